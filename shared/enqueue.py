"""Accepting a message: the body and every envelope that references it become durable in one transaction.

This is the single write behind an SMTP `250 ... queued as`: MULTI, SET body, SADD holders, XADD envelope(s),
XADD trace, EXEC. With `appendfsync always` EXEC answers after the AOF is on disk. If Redis fails before
EXEC nothing of the message exists, so the client's retry starts clean (no half-stored message).

`stage_enqueue` adds the same writes to a caller's transaction: a consumer that creates a new message (a
bounce) stages it together with its stream acknowledgement, so a crash can neither lose nor double it.
"""

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from shared.body_store import RedisBodyStore, holder, new_body_id
from shared.bus import stage_publish
from shared.models import Envelope, TraceEvent
from shared.streams import TRACE, TRACE_MAXLEN


def stage_enqueue(
    pipe: Pipeline,
    body: bytes,
    routes: dict[str, Envelope],
    trace: TraceEvent | None = None,
) -> dict[str, Envelope]:
    """Stage storing `body` once and publishing one envelope per stream in `routes` (stream → envelope).

    The envelopes' `body_id` and `size` are filled in here; they are returned as they will be published.
    """
    body_id = new_body_id()
    published = {
        stream: env.model_copy(update={"body_id": body_id, "size": len(body)})
        for stream, env in routes.items()
    }
    RedisBodyStore(pipe).stage_put(pipe, body_id, body, [holder(s, e.queue_id) for s, e in published.items()])
    for stream, env in published.items():
        stage_publish(pipe, stream, env)
    if trace is not None:
        stage_publish(pipe, TRACE, trace, maxlen=TRACE_MAXLEN)
    return published


async def enqueue(
    redis: Redis,
    body: bytes,
    routes: dict[str, Envelope],
    trace: TraceEvent | None = None,
) -> dict[str, Envelope]:
    """Store and publish in one MULTI/EXEC; returns once it is on disk (see module docstring)."""
    async with redis.pipeline(transaction=True) as pipe:
        published = stage_enqueue(pipe, body, routes, trace)
        await pipe.execute()
    return published
