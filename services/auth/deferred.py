"""The deferred queue for people: what waits in the site's retry sets, and retry now, bounce now, delete.

Both retry sets of a site are shown (`shared.retry_queue.RETRY_SETS`: the relay's and local delivery's);
an action on a queue id applies to its envelopes in both. Each action removes the envelopes from their set
and stages its own writes in the same MULTI (`RetryQueue.take`), with a trace event (service `admin`)
and a log line, so the message's journey shows who did what:

- retry: the envelope goes back on its stream now (the next attempt counts like any other);
- bounce: the sender gets a DSN saying the delivery was cancelled (none for a bounce: RFC 3464 §2), the
  body's hold is released;
- delete: the envelope is dropped and the body's hold released, without telling anyone (as
  `postsuper -d`).
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from shared.body_store import RedisBodyStore, holder
from shared.bounce import stage_bounce
from shared.bus import stage_publish
from shared.models import Envelope, RecipientState, RecipientStatus, TraceEvent
from shared.retry_queue import QUEUE_ID, RETRY_SETS, RetryQueue, Waiting
from shared.streams import TRACE, TRACE_MAXLEN

log = logging.getLogger(__name__)

CANCELLED_STATUS = "5.0.0"
"""A bounce a person asked for: a permanent failure with no more specific cause (RFC 3463 X.0.0)."""


class DeferredMessage(BaseModel):
    queue: str = Field(description="Which retry set: relay (to other sites) or delivery (local mailboxes).")
    queue_id: str
    message_id: str | None = None
    sender: str = Field(description='The envelope sender; "" is the null sender <> (a bounce).')
    recipients: list[str] = Field(description="The recipients still to do.")
    next_attempt_at: datetime
    attempts: int = Field(description="Attempts made so far.")
    received_at: datetime
    last_error: str | None = Field(None, description="The last error of the first recipient, if recorded.")
    errors: dict[str, str] = Field(default_factory=dict, description="Recipient → its last error.")


def describe(queue: str, waiting: Waiting) -> DeferredMessage:
    envelope = waiting.envelope
    errors = {r: e for r, e in waiting.errors.items() if r in envelope.recipients} or waiting.errors
    return DeferredMessage(
        queue=queue,
        queue_id=envelope.queue_id,
        message_id=envelope.message_id,
        sender=envelope.sender,
        recipients=envelope.recipients,
        next_attempt_at=datetime.fromtimestamp(waiting.due, UTC),
        attempts=envelope.attempts,
        received_at=envelope.received_at,
        last_error=next(iter(errors.values()), None),
        errors=errors,
    )


Stage = Callable[[RetryQueue, Pipeline, Waiting], dict[str, Any]]
"""Stages one action on one taken envelope; returns what the trace event should say besides."""


@dataclass
class DeferredQueue:
    redis: Redis
    hostname: str

    def _queues(self) -> dict[str, RetryQueue]:
        return {name: RetryQueue(self.redis, stream, key) for name, (key, stream) in RETRY_SETS.items()}

    async def waiting(self, limit: int) -> tuple[list[DeferredMessage], int]:
        """The first `limit` of each set by next attempt, merged in that order; and how many wait in all."""
        found: list[DeferredMessage] = []
        total = 0
        for name, queue in self._queues().items():
            waiting, count = await queue.waiting(limit)
            found += [describe(name, w) for w in waiting]
            total += count
        found.sort(key=lambda m: m.next_attempt_at)
        return found[:limit], total

    async def retry(self, queue_id: str) -> list[DeferredMessage]:
        def stage(queue: RetryQueue, pipe: Pipeline, waiting: Waiting) -> dict[str, Any]:
            queue.stage_requeue(pipe, waiting)
            return {}

        return await self._act(queue_id, "retry-now", stage)

    async def delete(self, queue_id: str) -> list[DeferredMessage]:
        def stage(queue: RetryQueue, pipe: Pipeline, waiting: Waiting) -> dict[str, Any]:
            envelope = waiting.envelope
            RedisBodyStore(pipe).stage_release(
                pipe, envelope.body_id, holder(queue.stream, envelope.queue_id)
            )
            return {}

        return await self._act(queue_id, "deleted", stage)

    async def bounce(self, queue_id: str, local_domains: set[str]) -> list[DeferredMessage]:
        if not QUEUE_ID.fullmatch(queue_id):
            return []
        bodies = RedisBodyStore(self.redis)
        originals: dict[str, bytes | None] = {}

        def stage(queue: RetryQueue, pipe: Pipeline, waiting: Waiting) -> dict[str, Any]:
            envelope = waiting.envelope
            statuses = [_cancelled(envelope, r, waiting.errors.get(r)) for r in envelope.recipients]
            notice = stage_bounce(
                pipe,
                envelope,
                statuses,
                originals.get(envelope.body_id),
                self.hostname,
                local_domains=local_domains,
                service="admin",
            )
            RedisBodyStore(pipe).stage_release(
                pipe, envelope.body_id, holder(queue.stream, envelope.queue_id)
            )
            return {"notice_queue_id": notice.queue_id if notice else None}

        # The original's header goes into the DSN: read before the MULTI (a body never changes).
        for body_id in await self._body_ids(queue_id):
            originals[body_id] = await bodies.get(body_id)
        return await self._act(queue_id, "bounce-now", stage)

    async def _body_ids(self, queue_id: str) -> set[str]:
        ids: set[str] = set()
        for key, _stream in RETRY_SETS.values():
            async for member, _score in self.redis.zscan_iter(key, match=f'*"queue_id":"{queue_id}"*'):
                envelope = Envelope.model_validate_json(member)
                if envelope.queue_id == queue_id:
                    ids.add(envelope.body_id)
        return ids

    async def _act(self, queue_id: str, action: str, stage: Stage) -> list[DeferredMessage]:
        done: list[DeferredMessage] = []
        for name, queue in self._queues().items():

            def stage_all(
                pipe: Pipeline, taken: list[Waiting], queue: RetryQueue = queue, name: str = name
            ) -> None:
                for waiting in taken:
                    extra = stage(queue, pipe, waiting)
                    envelope = waiting.envelope
                    event = TraceEvent(
                        queue_id=envelope.queue_id,
                        message_id=envelope.message_id,
                        service="admin",
                        event=action,
                        detail={"queue": name, "recipients": envelope.recipients, **extra},
                    )
                    stage_publish(pipe, TRACE, event, maxlen=TRACE_MAXLEN)

            taken = await queue.take(queue_id, stage_all)
            for waiting in taken:
                log.warning(
                    f"deferred message: {action} by the admin API",
                    extra={
                        **waiting.envelope.log_fields(),
                        "queue": name,
                        "action": action,
                        "recipients": waiting.envelope.recipients,
                    },
                )
            done += [describe(name, w) for w in taken]
        return done


def _cancelled(envelope: Envelope, recipient: str, last_error: str | None) -> RecipientStatus:
    reason = "delivery cancelled by the postmaster"
    if last_error:
        reason += f"; last error: {last_error}"
    return RecipientStatus(
        recipient=recipient, state=RecipientState.FAILED, status=CANCELLED_STATUS, diagnostic=reason
    )
