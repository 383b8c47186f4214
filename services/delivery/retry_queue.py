"""Deferred deliveries: envelopes waiting for their next attempt, kept in Redis so restarts lose nothing.

A recipient that cannot take a message yet (over quota, auth service down, disk error) is not retried by
leaving its stream entry pending: that would spin through `bus_max_deliveries` in minutes and end in the
dead-letter stream. Instead the handler stages, in the same MULTI as the stream acknowledgement, a copy of
the envelope with just the deferred recipients into a sorted set scored by the time it is due.

`run_scheduler` (in every replica) moves due envelopes back onto the LOCAL_DELIVERY stream with one Lua
script (ZRANGEBYSCORE + XADD + ZREM), so two replicas never move the same envelope twice and a crash never
drops one: the move is a single atomic, fsynced Redis write. Between looks it sleeps until the next due time
(at most `delivery_scheduler_poll_s`), so it never busy-loops.
"""

import asyncio
import contextlib
import logging
import time

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from shared.models import Envelope
from shared.streams import LOCAL_DELIVERY

log = logging.getLogger(__name__)

DEFERRED = "yubin:delivery:deferred"
"""Sorted set: member = envelope JSON, score = Unix time of the next attempt."""

BATCH = 100

# The stream entry has the fields `shared.bus.stage_publish` writes: type (the model's name) and data.
_MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'type', 'Envelope', 'data', member)
  redis.call('ZREM', KEYS[1], member)
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {#due, first[2] or ''}
"""


def stage_defer(pipe: Pipeline, envelope: Envelope, due: float) -> None:
    """Stage `envelope` to come back on the LOCAL_DELIVERY stream at Unix time `due`."""
    pipe.zadd(DEFERRED, {envelope.model_dump_json(): due})


class RetryQueue:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._move_due = redis.register_script(_MOVE_DUE)

    async def move_due(self, now: float, limit: int = BATCH) -> tuple[int, float | None]:
        """Publish up to `limit` envelopes due at `now`; returns how many, and when the next one is due."""
        moved, first = await self._move_due(keys=[DEFERRED, LOCAL_DELIVERY], args=[now, limit])
        return int(moved), float(first) if first else None

    async def run_scheduler(self, stop: asyncio.Event, poll_s: float) -> None:
        """Move due envelopes back onto the stream until `stop` is set."""
        while not stop.is_set():
            next_due: float | None = None
            try:
                moved, next_due = await self.move_due(time.time())
                if moved:
                    log.info("deferred envelopes due again", extra={"count": moved})
                    if moved == BATCH:
                        continue
            except RedisError as exc:
                log.warning("deferred queue unreachable, retrying", extra={"error": str(exc)})
            wait = poll_s if next_due is None else min(poll_s, max(next_due - time.time(), 0.01))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
