"""An outage of a dependency defers an entry for as long as it lasts; it never makes it a dead letter."""

import asyncio
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from shared.auth_client import AuthUnavailable
from shared.bus import Consumer, Entry, publish, run_consumer
from shared.config import BusSettings
from shared.models import Envelope
from shared.redis_client import connect
from shared.streams import DEAD_LETTER

FAST = BusSettings(
    bus_block_ms=50, bus_claim_idle_ms=200, bus_max_deliveries=2, concurrency=4, bus_outage_backoff_max_s=0.2
)


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_an_outage_longer_than_the_delivery_limit_is_waited_out(redis_url: str) -> None:
    redis: Redis = connect(redis_url)
    try:
        consumer = Consumer(redis, "s", "g", FAST, name="c1")
        await consumer.ensure_group()
        entry_id = await publish(
            redis, "s", Envelope(sender="a@alpha.test", recipients=["b@beta.test"], body_id="b")
        )
        tries: list[int] = []
        done = asyncio.Event()

        async def handle(entry: Entry) -> None:
            tries.append(entry.deliveries)
            if len(tries) <= 3 * FAST.bus_max_deliveries:
                raise AuthUnavailable("auth service unreachable: connection refused")
            done.set()

        stop = asyncio.Event()
        task = asyncio.create_task(run_consumer(consumer, handle, stop))
        await asyncio.wait_for(done.wait(), 30)
        await wait_until(lambda: _pending_is(redis, 0))
        stop.set()
        await asyncio.wait_for(task, 10)
        assert await redis.xlen(DEAD_LETTER) == 0
        assert len(tries) == 3 * FAST.bus_max_deliveries + 1
        assert await redis.xlen("s") == 0, f"{entry_id} was acknowledged and deleted"
    finally:
        await redis.aclose()


async def test_restarts_during_an_outage_do_not_use_up_the_deliveries(redis_url: str) -> None:
    """A consumer stopped while its entry waits for a dependency leaves it pending; the next one to
    reclaim it finds the delivery count that outage attempts do not raise."""
    redis: Redis = connect(redis_url)
    try:
        await Consumer(redis, "s", "g", FAST).ensure_group()
        await publish(redis, "s", Envelope(sender="a@alpha.test", recipients=["b@beta.test"], body_id="b"))
        await Consumer(redis, "s", "g", FAST, name="first").read_new(1)  # and then it died
        for generation in range(3 * FAST.bus_max_deliveries):
            tried = asyncio.Event()

            async def outage(entry: Entry, tried: asyncio.Event = tried) -> None:
                tried.set()
                raise ConnectionRefusedError("auth service down")

            stop = asyncio.Event()
            consumer = Consumer(redis, "s", "g", FAST, name=f"gen{generation}")
            task = asyncio.create_task(run_consumer(consumer, outage, stop))
            try:
                await asyncio.wait_for(tried.wait(), 20)
            finally:
                stop.set()
                await asyncio.wait_for(task, 10)
            assert await redis.xlen(DEAD_LETTER) == 0
        assert await _pending_is(redis, 1)
    finally:
        await redis.aclose()


async def test_a_bug_is_still_a_dead_letter(redis_url: str) -> None:
    redis: Redis = connect(redis_url)
    try:
        consumer = Consumer(redis, "s", "g", FAST, name="c1")
        await consumer.ensure_group()
        await publish(redis, "s", Envelope(sender="a@alpha.test", recipients=["b@beta.test"], body_id="b"))

        async def handle(entry: Entry) -> None:
            raise KeyError("no such thing")

        stop = asyncio.Event()
        task = asyncio.create_task(run_consumer(consumer, handle, stop))
        await wait_until(lambda: _has_entries(redis, DEAD_LETTER))
        stop.set()
        await asyncio.wait_for(task, 10)
        [(_id, fields)] = await redis.xrange(DEAD_LETTER)
        assert b"last error: KeyError: 'no such thing'" in fields[b"reason"]
        assert await redis.xlen("s") == 0
    finally:
        await redis.aclose()


async def _pending_is(redis: Redis, count: int) -> bool:
    return (await redis.xpending("s", "g"))["pending"] == count


async def _has_entries(redis: Redis, stream: str) -> bool:
    return await redis.xlen(stream) > 0
