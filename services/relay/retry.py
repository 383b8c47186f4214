"""Deferred mail: the backoff schedule and the Redis sorted set that holds envelopes until they are due.

`yubin:relay:retry` holds each deferred envelope (JSON, only the recipients still to do) scored by the
time (epoch seconds) its next attempt is due. It lives in Redis, so it survives restarts of every relay.

- The handler stages `ZADD` in the same MULTI as the stream acknowledgement: a deferred envelope is
  either still pending on the stream or in the set, never neither and never both.
- A scheduler task in every replica sleeps until the earliest due time (waking at least every
  `relay_scheduler_max_sleep_s`, since another replica may have added an earlier one) and moves due
  envelopes back into OUTBOUND with one Lua script: ZRANGEBYSCORE + XADD + ZREM run atomically, so two
  replicas can never both move the same envelope.
"""

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from shared.models import Envelope

log = logging.getLogger(__name__)

RETRY_KEY = "yubin:relay:retry"

# KEYS[1] the retry set, KEYS[2] the stream; ARGV[1] now, ARGV[2] batch size, ARGV[3] the entry type.
# The fields are those of shared.bus.stage_publish, so consumers cannot tell a retry from a new entry.
_MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'type', ARGV[3], 'data', member)
  redis.call('ZREM', KEYS[1], member)
end
return #due
"""


def backoff_delay(
    attempts: int, schedule: Sequence[float], jitter: float, rng: random.Random | None = None
) -> float:
    """The wait before the next attempt, after `attempts` failed ones (1 → the first wait).

    The schedule's last wait repeats; each wait is spread by ± `jitter` so that a burst of deferred mail
    (a remote host down) does not come back as a burst.
    """
    base = schedule[min(max(attempts, 1), len(schedule)) - 1]
    spread = (rng or random).uniform(-jitter, jitter) if jitter else 0.0
    return base * (1 + spread)


class RetryQueue:
    def __init__(self, redis: Redis, stream: str, *, key: str = RETRY_KEY) -> None:
        self.redis = redis
        self.stream = stream
        self.key = key
        self._move_due = redis.register_script(_MOVE_DUE)

    def stage_defer(self, pipe: Pipeline, envelope: Envelope, due: float) -> None:
        pipe.zadd(self.key, {envelope.model_dump_json(): due})

    async def move_due(self, now: float | None = None, batch: int = 100) -> int:
        """Move envelopes due by `now` back into the stream; returns how many were moved."""
        moved = await self._move_due(
            keys=[self.key, self.stream], args=[now if now is not None else time.time(), batch, "Envelope"]
        )
        return int(moved)

    async def earliest_due(self) -> float | None:
        first = await self.redis.zrange(self.key, 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    async def envelopes(self) -> list[tuple[Envelope, float]]:
        """Everything waiting, with due times (for tests and operators)."""
        return [
            (Envelope.model_validate_json(member), score)
            for member, score in await self.redis.zrange(self.key, 0, -1, withscores=True)
        ]


async def run_scheduler(
    queue: RetryQueue, stop: asyncio.Event, wake: asyncio.Event, max_sleep: float
) -> None:
    """Move due retries back onto the stream until `stop`; `wake` cuts a sleep short (a new deferral here)."""
    while not stop.is_set():
        wake.clear()  # before looking: a deferral from now on wakes the sleep below
        try:
            while (moved := await queue.move_due()) > 0:
                log.info("retries due, back on the queue", extra={"count": moved})
            earliest = await queue.earliest_due()
            pause = max_sleep if earliest is None else min(max_sleep, max(0.0, earliest - time.time()))
        except (RedisError, OSError) as exc:
            log.warning("retry scheduler cannot reach Redis", extra={"error": str(exc)})
            pause = max_sleep
        stopping = asyncio.ensure_future(stop.wait())
        woken = asyncio.ensure_future(wake.wait())
        try:
            await asyncio.wait([stopping, woken], timeout=pause, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (stopping, woken):
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter
