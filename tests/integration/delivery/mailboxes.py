"""What delivery tests look at: Maildir contents, Redis state, and waiting for them to change."""

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from email.utils import make_msgid
from pathlib import Path

from redis.asyncio import Redis

from shared.body_store import BODY_KEY
from shared.enqueue import enqueue
from shared.models import Envelope, TraceEvent
from shared.streams import DELIVERY_GROUP, LOCAL_DELIVERY, TRACE


def files(mail_root: Path, address: str, sub: str = "new") -> list[str]:
    local, _, domain = address.partition("@")
    path = mail_root / domain / local / sub
    return sorted(os.listdir(path)) if path.is_dir() else []


def read(mail_root: Path, address: str, name: str, sub: str = "new") -> bytes:
    local, _, domain = address.partition("@")
    return (mail_root / domain / local / sub / name).read_bytes()


async def send(
    redis: Redis, body: bytes, sender: str, recipients: list[str], message_id: str | None = ""
) -> Envelope:
    """Queue `body` for local delivery as the MX would. Every message gets its own Message-ID unless one is
    given (None: the message has none), since delivery stores one copy per Message-ID and recipient."""
    if message_id == "":
        message_id = make_msgid(domain="beta.test")
    envelope = Envelope(sender=sender, recipients=recipients, body_id="", message_id=message_id)
    published = await enqueue(redis, body, {LOCAL_DELIVERY: envelope})
    return published[LOCAL_DELIVERY]


async def pending(redis: Redis) -> int:
    info = await redis.xpending(LOCAL_DELIVERY, DELIVERY_GROUP)
    return int(info["pending"])


async def body_exists(redis: Redis, envelope: Envelope) -> bool:
    return bool(await redis.exists(BODY_KEY.format(envelope.body_id)))


async def body_released(redis: Redis, envelope: Envelope) -> bool:
    return not await body_exists(redis, envelope)


async def trace_events(redis: Redis, event: str) -> list[TraceEvent]:
    entries = await redis.xrange(TRACE)
    events = [TraceEvent.model_validate_json(fields[b"data"]) for _id, fields in entries]
    return [e for e in events if e.event == event]


async def stream_envelopes(redis: Redis, stream: str) -> list[Envelope]:
    return [Envelope.model_validate_json(fields[b"data"]) for _id, fields in await redis.xrange(stream)]


async def wait_until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {what}")
