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

**Why it waits** (`ERRORS_SUFFIX`): the deferral also records each deferred recipient's last error in a
hash next to the set, keyed by a digest of the member, so a person looking at the queue sees why; the
entry goes when the envelope leaves the set.

**A person's actions** (`take`, used by the admin API's `/v1/queue/deferred`): retry now, bounce now or
delete one queue id's envelopes. Each removes the members from the set (WATCHed: never together with the
scheduler moving the same one) and stages its own writes in the same MULTI.
"""

import asyncio
import contextlib
import hashlib
import json
import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError, WatchError

from shared.models import Envelope, RecipientState, RecipientStatus
from shared.streams import LOCAL_DELIVERY, OUTBOUND

log = logging.getLogger(__name__)

RELAY_RETRY_KEY = "yubin:relay:retry"
"""The relay's retry set (OUTBOUND)."""
DELIVERY_RETRY_KEY = "yubin:delivery:deferred"
"""Local delivery's retry set (LOCAL_DELIVERY)."""
RETRY_SETS = {"relay": (RELAY_RETRY_KEY, OUTBOUND), "delivery": (DELIVERY_RETRY_KEY, LOCAL_DELIVERY)}
"""Every retry set of a site: name → (sorted set, stream its envelopes go back to)."""
ERRORS_SUFFIX = ":errors"
"""Hash `<set>:errors`: digest of a member → JSON {recipient: last error}."""
QUEUE_ID = re.compile(r"[0-9A-Za-z]{1,64}")
"""What a queue id given by a person may look like (also safe inside a ZSCAN pattern)."""

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


def member_digest(member: bytes | str) -> str:
    """The key of a member's last errors (the same as the Lua scripts' redis.sha1hex)."""
    data = member if isinstance(member, bytes) else member.encode()
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


# KEYS[1] the retry set, KEYS[2] the stream, KEYS[3] the errors hash; ARGV[1] now, ARGV[2] batch size. The
# entry's fields are those of shared.bus.stage_publish, so a consumer cannot tell a retry from a new entry.
# Returns how many moved and the score of the earliest one left ('' if none).
_MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'type', 'Envelope', 'data', member)
  redis.call('ZREM', KEYS[1], member)
  redis.call('HDEL', KEYS[3], redis.sha1hex(member))
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {#due, first[2] or ''}
"""

BATCH = 100
_SCAN_COUNT = 1000


@dataclass(frozen=True)
class Waiting:
    """One envelope in a retry set."""

    envelope: Envelope
    due: float
    member: bytes
    errors: dict[str, str] = field(default_factory=dict)
    """Recipient → its last error, as recorded by the deferral (empty if it recorded none)."""


class RetryQueue:
    """Envelopes waiting in the sorted set `key` until they are due again on `stream`."""

    def __init__(self, redis: Redis, stream: str, key: str) -> None:
        self.redis = redis
        self.stream = stream
        self.key = key
        self.errors_key = key + ERRORS_SUFFIX
        self._move_due = redis.register_script(_MOVE_DUE)
        self._wake = asyncio.Event()

    def stage_defer(
        self,
        pipe: Pipeline,
        envelope: Envelope,
        due: float,
        statuses: Sequence[RecipientStatus] = (),
    ) -> None:
        """Stage `envelope` to come back on the stream at Unix time `due` (in the caller's MULTI), and the
        deferred `statuses` as the reason it waits."""
        member = envelope.model_dump_json()
        pipe.zadd(self.key, {member: due})
        if statuses:
            errors = {s.recipient: f"{s.status} {s.diagnostic or ''}".strip() for s in statuses}
            pipe.hset(self.errors_key, member_digest(member), json.dumps(errors)[:10_000])

    def notify(self) -> None:
        """A deferral was just committed: let the scheduler recompute its sleep."""
        self._wake.set()

    async def move_due(self, now: float | None = None, batch: int = BATCH) -> tuple[int, float | None]:
        """Move up to `batch` envelopes due by `now` onto the stream: how many, and when the next is due."""
        moved, first = await self._move_due(
            keys=[self.key, self.stream, self.errors_key], args=[time.time() if now is None else now, batch]
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

    async def waiting(self, limit: int) -> tuple[list[Waiting], int]:
        """The first `limit` envelopes by due time, with their last errors; and how many wait in all."""
        members = await self.redis.zrange(self.key, 0, limit - 1, withscores=True)
        total = int(await self.redis.zcard(self.key))
        digests = [member_digest(m) for m, _ in members]
        errors = await self.redis.hmget(self.errors_key, digests) if digests else []
        return [
            Waiting(Envelope.model_validate_json(m), float(due), m, _errors(e))
            for (m, due), e in zip(members, errors, strict=True)
        ], total

    async def take(self, queue_id: str, stage: Callable[[Pipeline, list[Waiting]], None]) -> list[Waiting]:
        """Remove every envelope of `queue_id` from the set, together with what `stage` adds, in one MULTI;
        returns them ([] and nothing staged if there are none).

        WATCHed, so the scheduler moving one of them meanwhile, or a second person acting on the same
        queue id, makes us look again instead of acting on what is gone."""
        if not QUEUE_ID.fullmatch(queue_id):
            return []
        pattern = f'*"queue_id":"{queue_id}"*'  # the member is the envelope's compact JSON
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(self.key)
                    found: list[Waiting] = []
                    cursor = 0
                    while True:
                        cursor, items = await pipe.zscan(self.key, cursor, match=pattern, count=_SCAN_COUNT)
                        for member, due in items:
                            envelope = Envelope.model_validate_json(member)
                            if envelope.queue_id == queue_id:
                                found.append(Waiting(envelope, float(due), member))
                        if not cursor:
                            break
                    if not found:
                        await pipe.unwatch()
                        return []
                    digests = [member_digest(w.member) for w in found]
                    errors = await pipe.hmget(self.errors_key, digests)
                    found = [
                        Waiting(w.envelope, w.due, w.member, _errors(e))
                        for w, e in zip(found, errors, strict=True)
                    ]
                    pipe.multi()
                    pipe.zrem(self.key, *[w.member for w in found])
                    pipe.hdel(self.errors_key, *digests)
                    stage(pipe, found)
                    await pipe.execute()
                    return found
                except WatchError:
                    continue

    def stage_requeue(self, pipe: Pipeline, waiting: Waiting) -> None:
        """Put a taken envelope back on the stream now (the fields `move_due` writes)."""
        pipe.xadd(self.stream, {"type": "Envelope", "data": waiting.member})

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


def _errors(raw: bytes | None) -> dict[str, str]:
    if not raw:
        return {}
    try:
        found = json.loads(raw)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


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
