"""The dead-letter stream for people: list, show, retry and delete entries that could never be processed.

The bus (`shared.bus.Consumer.dead_letter`) writes an entry there with the original stream, group, entry id,
type and data, the reason and the delivery count, and acknowledges the original in the same transaction.
The body the entry refers to keeps its holder, so a retry still finds it:
- retry: publish the original type and data to its stream again and remove the dead letter, in one MULTI;
- delete: release the entry's hold on its body (the last holder deletes it) and remove the dead letter,
  in one MULTI.
Served by the admin API (`/v1/queue/dead`, services/auth/routes/queue.py) and `yubin queue dead ...`.
"""

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from shared.body_store import RedisBodyStore, holder
from shared.models import Envelope
from shared.streams import DEAD_LETTER

ENTRY_ID = re.compile(r"\d{1,20}-\d{1,20}")


class DeadLetter(BaseModel):
    id: str = Field(description="The dead letter's own id (in the dead-letter stream).")
    stream: str = Field(description="The stream the entry came from, and goes back to on retry.")
    group: str = Field(description="The consumer group that gave up on it.")
    entry_id: str = Field(description="The entry's id in its stream.")
    type: str = Field(description="The entry's payload type (e.g. Envelope).")
    reason: str = Field(description="Why it was given up, with the last error.")
    deliveries: int = Field(description="How often it had been delivered.")
    failed_at: datetime | None = Field(None, description="When it was given up.")
    queue_id: str | None = Field(None, description="The message's queue id, for an envelope.")
    message_id: str | None = Field(None, description="The message's Message-ID, for an envelope.")
    sender: str | None = Field(None, description="The envelope sender, for an envelope.")
    recipients: list[str] = Field(default_factory=list, description="The envelope recipients.")
    data: str | None = Field(None, description="The entry's payload as stored (only when showing one).")


def _text(fields: dict[bytes, bytes], name: str) -> str:
    return fields.get(name.encode(), b"").decode(errors="replace")


def _envelope(fields: dict[bytes, bytes]) -> Envelope | None:
    if fields.get(b"type") != b"Envelope":
        return None
    try:
        return Envelope.model_validate_json(fields.get(b"data", b""))
    except ValidationError:
        return None


def _dead_letter(entry_id: bytes | str, fields: dict[bytes, bytes], *, with_data: bool) -> DeadLetter:
    envelope = _envelope(fields)
    failed_at = _text(fields, "failed_at")
    deliveries = _text(fields, "deliveries")
    return DeadLetter(
        id=entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
        stream=_text(fields, "stream"),
        group=_text(fields, "group"),
        entry_id=_text(fields, "entry_id"),
        type=_text(fields, "type"),
        reason=_text(fields, "reason"),
        deliveries=int(deliveries) if deliveries.isdigit() else 0,
        failed_at=datetime.fromtimestamp(float(failed_at), UTC) if failed_at else None,
        queue_id=envelope.queue_id if envelope else None,
        message_id=envelope.message_id if envelope else None,
        sender=envelope.sender if envelope else None,
        recipients=envelope.recipients if envelope else [],
        data=_text(fields, "data") if with_data else None,
    )


class DeadLetters:
    def __init__(self, redis: Redis, stream: str = DEAD_LETTER) -> None:
        self.redis = redis
        self.stream = stream
        self.bodies = RedisBodyStore(redis)

    async def oldest(self, limit: int = 100) -> list[DeadLetter]:
        """The oldest first, at most `limit`."""
        entries = await self.redis.xrange(self.stream, count=limit)
        return [_dead_letter(entry_id, fields, with_data=False) for entry_id, fields in entries]

    async def count(self) -> int:
        return int(await self.redis.xlen(self.stream))

    async def get(self, dead_id: str) -> DeadLetter | None:
        if not ENTRY_ID.fullmatch(dead_id):
            return None
        found = await self.redis.xrange(self.stream, min=dead_id, max=dead_id, count=1)
        return _dead_letter(dead_id, found[0][1], with_data=True) if found else None

    async def retry(self, dead_id: str) -> str | None:
        """Put the entry back on its stream; returns its new entry id (None if there is no such dead letter)."""

        def stage(pipe: Pipeline, fields: dict[bytes, bytes]) -> None:
            # The fields of shared.bus.stage_publish: consumers cannot tell it from a new entry.
            entry = {"type": fields.get(b"type", b""), "data": fields.get(b"data", b"")}
            pipe.xadd(_text(fields, "stream"), entry)  # type: ignore[arg-type]

        replies = await self._take(dead_id, stage)
        if replies is None:
            return None
        new_id = replies[0]
        return new_id.decode() if isinstance(new_id, bytes) else str(new_id)

    async def delete(self, dead_id: str) -> bool:
        """Drop the entry for good, releasing its body; False if there is no such dead letter."""

        def stage(pipe: Pipeline, fields: dict[bytes, bytes]) -> None:
            envelope = _envelope(fields)
            if envelope is not None:
                owner = holder(_text(fields, "stream"), envelope.queue_id)
                self.bodies.stage_release(pipe, envelope.body_id, owner)

        return await self._take(dead_id, stage) is not None

    async def _take(
        self, dead_id: str, stage: Callable[[Pipeline, dict[bytes, bytes]], None]
    ) -> list[Any] | None:
        """Remove one dead letter together with what `stage` adds, in one MULTI; None if it is not there.

        WATCHed, so two people retrying the same dead letter at once cannot both put it back."""
        if not ENTRY_ID.fullmatch(dead_id):
            return None
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(self.stream)
                    found = await pipe.xrange(self.stream, min=dead_id, max=dead_id, count=1)
                    if not found:
                        return None
                    pipe.multi()
                    stage(pipe, found[0][1])
                    pipe.xdel(self.stream, dead_id)
                    return await pipe.execute()
                except WatchError:
                    continue  # the dead-letter stream changed meanwhile: look again
