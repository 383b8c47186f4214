"""Admin API: the site's queues for people.

- `/v1/queue/dead`: the dead-letter stream (entries the bus gave up on), to list, show, retry and delete;
  the work is in `shared.dead_letters`.
- `/v1/queue/deferred`: the retry sets (messages waiting for their next attempt), to list, retry now,
  bounce now and delete; the work is in `services.auth.deferred`.

The auth service serves them because it is the site's admin API and shares the site's Redis.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status
from pydantic import BaseModel, Field

from services.auth.deferred import DeferredMessage, DeferredQueue
from services.auth.deps import PartsDep, require_admin
from shared.dead_letters import DeadLetter, DeadLetters

router = APIRouter(prefix="/v1/queue", tags=["queue"], dependencies=[Depends(require_admin)])


class DeadLetterList(BaseModel):
    total: int = Field(description="How many dead letters there are.")
    dead_letters: list[DeadLetter] = Field(description="The oldest first, at most `limit` of them.")


class Retried(BaseModel):
    stream: str = Field(description="The stream the entry is back on.")
    entry_id: str = Field(description="Its new id there.")


def _missing(dead_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no dead letter {dead_id}")


@router.get("/dead", summary="The dead letters, oldest first")
async def list_dead(
    parts: PartsDep, limit: Annotated[int, Query(ge=1, le=10_000, description="At most this many.")] = 100
) -> DeadLetterList:
    dead = DeadLetters(parts.redis)
    return DeadLetterList(total=await dead.count(), dead_letters=await dead.oldest(limit))


@router.get("/dead/{dead_id}", summary="One dead letter, with its payload")
async def show_dead(dead_id: str, parts: PartsDep) -> DeadLetter:
    found = await DeadLetters(parts.redis).get(dead_id)
    if found is None:
        raise _missing(dead_id)
    return found


@router.post("/dead/{dead_id}/retry", summary="Put the entry back on its stream (404 if there is none)")
async def retry_dead(dead_id: str, parts: PartsDep) -> Retried:
    dead = DeadLetters(parts.redis)
    found = await dead.get(dead_id)
    new_id = await dead.retry(dead_id) if found is not None else None
    if found is None or new_id is None:
        raise _missing(dead_id)
    return Retried(stream=found.stream, entry_id=new_id)


@router.delete(
    "/dead/{dead_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Drop the entry for good and release its message body (404 if there is none)",
)
async def delete_dead(dead_id: str, parts: PartsDep) -> Response:
    if not await DeadLetters(parts.redis).delete(dead_id):
        raise _missing(dead_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


class DeferredList(BaseModel):
    total: int = Field(description="How many envelopes wait in the retry sets.")
    deferred: list[DeferredMessage] = Field(description="The next due first, at most `limit` of them.")


class DeferredAction(BaseModel):
    queue_id: str
    action: str = Field(description="retry-now, bounce-now or deleted.")
    messages: list[DeferredMessage] = Field(description="The envelopes acted on (one per retry set).")


QueueIdPath = Annotated[str, Path(max_length=64, description="The message's queue id at this site.")]


def _deferred(parts: PartsDep) -> DeferredQueue:
    return DeferredQueue(parts.redis, parts.settings.hostname)


def _done(queue_id: str, action: str, messages: list[DeferredMessage]) -> DeferredAction:
    if not messages:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no deferred message {queue_id}")
    return DeferredAction(queue_id=queue_id, action=action, messages=messages)


@router.get("/deferred", summary="Messages waiting for their next attempt, the next due first")
async def list_deferred(
    parts: PartsDep, limit: Annotated[int, Query(ge=1, le=10_000, description="At most this many.")] = 100
) -> DeferredList:
    deferred, total = await _deferred(parts).waiting(limit)
    return DeferredList(total=total, deferred=deferred)


@router.post("/deferred/{queue_id}/retry", summary="Attempt delivery now (404 if not deferred)")
async def retry_deferred(queue_id: QueueIdPath, parts: PartsDep) -> DeferredAction:
    return _done(queue_id, "retry-now", await _deferred(parts).retry(queue_id))


@router.post(
    "/deferred/{queue_id}/bounce",
    summary="Give up now: the sender gets a DSN (none for a bounce); 404 if not deferred",
)
async def bounce_deferred(queue_id: QueueIdPath, parts: PartsDep) -> DeferredAction:
    domains = set(await parts.directory.domain_names())
    return _done(queue_id, "bounce-now", await _deferred(parts).bounce(queue_id, domains))


@router.delete(
    "/deferred/{queue_id}", summary="Drop it without a DSN and release its body (404 if not deferred)"
)
async def delete_deferred(queue_id: QueueIdPath, parts: PartsDep) -> DeferredAction:
    return _done(queue_id, "deleted", await _deferred(parts).delete(queue_id))
