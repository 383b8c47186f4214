"""Deferred work, for the relay and for local delivery alike: one retry policy, one retry queue.

**The policy** (`RetryPolicy`; each service has its own settings for it, see docs/relay.md "Retries"):

- After the n-th failed attempt the envelope waits the n-th entry of the schedule (the last entry
  repeats), spread by ± `jitter` (a fraction), so a burst deferred together does not come back together.
- The message is retried until `lifetime_s` after it was accepted; the last attempt is made when the
  lifetime ends (a wait never runs past it). A recipient still deferred then fails for good (`expire`).
- After `delay_warning_s` undelivered (0: never) the sender gets one "delayed" DSN.

**Expiry status.** A recipient that expires is reported `Action: failed` with the *last temporary status*
(e.g. `4.4.1` no answer, `4.2.2` mailbox full) and the last error: RFC 3463 says of X.4.7 ("delivery time
expired") that "the code for the actual problem found when delivery was attempted should be returned
rather than this code", and a 4.x.x status with `Action: failed` is what Postfix (and most MTAs) send.
`4.4.7` is used only when no specific code is known (the last reply had none: `4.0.0`). The status is
never rewritten to 5.x.x: `5.2.2` would claim the mailbox is full for good, which nobody observed.

**The queue** (`RetryQueue`) is a Redis sorted set: member = the envelope (JSON, only the recipients still
to do), score = the time it is due. The caller stages `ZADD` in the same MULTI as its stream
acknowledgement, so a deferred envelope is either still pending on the stream or in the set, never neither
and never both. `run` (a task in every replica) sleeps until the earliest due time (at most `max_sleep`,
since another replica may have added an earlier one; `notify` cuts a sleep short after a local deferral)
and moves due envelopes back onto the stream with one Lua script (ZRANGEBYSCORE + XADD + ZREM, atomic):
two replicas never move the same envelope, and a crash never drops one.
"""

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from shared.models import Envelope, RecipientState, RecipientStatus

log = logging.getLogger(__name__)

EXPIRED_STATUS = "4.4.7"
"""RFC 3463 "delivery time expired": only when the last attempt gave no specific code."""


@dataclass(frozen=True)
class RetryPolicy:
    schedule_s: Sequence[float]
    jitter: float
    lifetime_s: float
    delay_warning_s: float

    def __post_init__(self) -> None:
        if not self.schedule_s or any(wait <= 0 for wait in self.schedule_s):
            raise ValueError("the retry schedule needs at least one wait, each above 0")
        if not 0 <= self.jitter < 1:
            raise ValueError("the retry jitter is a fraction in [0, 1)")

    def delay(self, attempts: int, rng: random.Random | None = None) -> float:
        """The wait after `attempts` failed attempts (1 → the first entry of the schedule)."""
        base = self.schedule_s[min(max(attempts, 1), len(self.schedule_s)) - 1]
        spread = (rng or random).uniform(-self.jitter, self.jitter) if self.jitter else 0.0
        return base * (1 + spread)

    def expires_at(self, envelope: Envelope) -> float:
        return envelope.received_at.timestamp() + self.lifetime_s

    def next_due(
        self, envelope: Envelope, attempts: int, now: float, rng: random.Random | None = None
    ) -> float:
        """When the next attempt is due: the scheduled wait, but never after the lifetime ends."""
        return min(now + self.delay(attempts, rng), self.expires_at(envelope))

    def expired(self, envelope: Envelope, now: float) -> bool:
        return now >= self.expires_at(envelope)

    def delay_notice_due(self, envelope: Envelope, now: float) -> bool:
        """Whether the sender should get the one "delayed" DSN now (never for a bounce, never twice)."""
        return (
            self.delay_warning_s > 0
            and not envelope.delay_notified
            and not envelope.is_bounce
            and now - envelope.received_at.timestamp() >= self.delay_warning_s
        )


def expire(statuses: list[RecipientStatus], attempts: int) -> list[RecipientStatus]:
    """Deferred recipients of a message past its lifetime, as failures (see the module docstring)."""
    return [
        status.model_copy(
            update={
                "state": RecipientState.FAILED,
                "status": EXPIRED_STATUS if status.status in ("4.0.0", "") else status.status,
                "diagnostic": f"delivery time expired after {attempts} attempts; last error: "
                f"{status.diagnostic or status.status}",
            }
        )
        for status in statuses
    ]


# KEYS[1] the retry set, KEYS[2] the stream; ARGV[1] now, ARGV[2] batch size. The entry's fields are those
# of shared.bus.stage_publish, so a consumer cannot tell a retry from a new entry. Returns how many moved
# and the score of the earliest one left ('' if none).
_MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'type', 'Envelope', 'data', member)
  redis.call('ZREM', KEYS[1], member)
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {#due, first[2] or ''}
"""

BATCH = 100


class RetryQueue:
    """Envelopes waiting in the sorted set `key` until they are due again on `stream`."""

    def __init__(self, redis: Redis, stream: str, key: str) -> None:
        self.redis = redis
        self.stream = stream
        self.key = key
        self._move_due = redis.register_script(_MOVE_DUE)
        self._wake = asyncio.Event()

    def stage_defer(self, pipe: Pipeline, envelope: Envelope, due: float) -> None:
        """Stage `envelope` to come back on the stream at Unix time `due` (in the caller's MULTI)."""
        pipe.zadd(self.key, {envelope.model_dump_json(): due})

    def notify(self) -> None:
        """A deferral was just committed: let the scheduler recompute its sleep."""
        self._wake.set()

    async def move_due(self, now: float | None = None, batch: int = BATCH) -> tuple[int, float | None]:
        """Move up to `batch` envelopes due by `now` onto the stream: how many, and when the next is due."""
        moved, first = await self._move_due(
            keys=[self.key, self.stream], args=[time.time() if now is None else now, batch]
        )
        return int(moved), float(first) if first else None

    async def earliest_due(self) -> float | None:
        first = await self.redis.zrange(self.key, 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    async def envelopes(self) -> list[tuple[Envelope, float]]:
        """Everything waiting, with due times (for tests and operators)."""
        return [
            (Envelope.model_validate_json(member), score)
            for member, score in await self.redis.zrange(self.key, 0, -1, withscores=True)
        ]

    async def run(self, stop: asyncio.Event, max_sleep: float) -> None:
        """Move due envelopes back onto the stream until `stop` is set."""
        while not stop.is_set():
            self._wake.clear()  # before looking: a deferral from now on cuts the sleep below short
            try:
                moved, next_due = await self.move_due()
                if moved:
                    log.info("retries due, back on the queue", extra={"count": moved, "stream": self.stream})
                    if moved == BATCH:
                        continue
                pause = max_sleep if next_due is None else min(max_sleep, max(0.0, next_due - time.time()))
            except (RedisError, OSError) as exc:
                log.warning("retry queue unreachable", extra={"error": str(exc), "key": self.key})
                pause = max_sleep
            await _sleep(pause, stop, self._wake)


async def _sleep(pause: float, *events: asyncio.Event) -> None:
    """Sleep `pause` seconds, or until one of `events` is set."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=pause, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
