"""Admin API: the dead-letter stream (entries the bus gave up on), to list, show, retry and delete.

The auth service serves it because it is the site's admin API and shares the site's Redis; the work is
in `shared.dead_letters`.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from pydantic import BaseModel, Field

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
