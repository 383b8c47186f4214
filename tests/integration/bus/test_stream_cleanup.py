"""Queue streams hold only the work not yet done: acknowledged entries are deleted, safely."""

import asyncio

from redis.asyncio import Redis

from shared.bus import Consumer, publish
from shared.config import BusSettings
from shared.models import Envelope
from shared.redis_client import connect
from shared.stream_cleanup import FAILURES_KEY

FAST = BusSettings(bus_block_ms=50, bus_claim_idle_ms=200, bus_max_deliveries=3, concurrency=4)


def envelope(n: int) -> Envelope:
    return Envelope(sender="a@alpha.test", recipients=[f"user{n}@beta.test"], body_id=f"b{n}")


async def test_acknowledged_entries_are_deleted(redis_url: str) -> None:
    redis = connect(redis_url)
    try:
        consumer = Consumer(redis, "s", "g", FAST, name="c1")
        await consumer.ensure_group()
        for n in range(5):
            await publish(redis, "s", envelope(n))
        entries = await consumer.read_new(10)
        await redis.hset(FAILURES_KEY.format("s"), entries[0].id, "an earlier failure")
        await consumer.ack(entries[0])
        async with redis.pipeline(transaction=True) as pipe:  # the staged form, as handlers use it
            consumer.stage_ack(pipe, entries[1])
            await pipe.execute()
        assert await redis.xlen("s") == 3
        assert not await redis.exists(FAILURES_KEY.format("s"))
        for entry in entries[2:]:
            await consumer.ack(entry)
        assert await redis.xlen("s") == 0
        # A consumer group created anew at 0 has no history to replay.
        await redis.xgroup_create("s", "fresh", id="0")
        assert await Consumer(redis, "s", "fresh", FAST, name="f").read_new(10, block_ms=10) == []
    finally:
        await redis.aclose()


async def test_an_entry_another_group_still_needs_is_kept(redis_url: str) -> None:
    redis = connect(redis_url)
    try:
        first = Consumer(redis, "s", "first", FAST, name="a")
        second = Consumer(redis, "s", "second", FAST, name="b")
        await first.ensure_group()
        await second.ensure_group()
        entry_id = await publish(redis, "s", envelope(1))
        [mine] = await first.read_new(1)
        await first.ack(mine)
        assert await redis.xlen("s") == 1  # "second" has not read it yet
        [theirs] = await second.read_new(1)
        assert theirs.id == entry_id
        await second.ack(theirs)
        assert await redis.xlen("s") == 0

        entry_id = await publish(redis, "s", envelope(2))
        [mine] = await first.read_new(1)
        [theirs] = await second.read_new(1)  # read, still pending in "second"
        await first.ack(mine)
        assert await redis.xlen("s") == 1
        await second.ack(theirs)
        assert await redis.xlen("s") == 0
    finally:
        await redis.aclose()


async def test_trim_sweeps_acknowledged_history_but_keeps_pending_and_unread(redis_url: str) -> None:
    redis = connect(redis_url)
    try:
        consumer = Consumer(redis, "s", "g", FAST, name="c1")
        await consumer.ensure_group()
        ids = [await publish(redis, "s", envelope(n)) for n in range(10)]
        entries = await consumer.read_new(6)
        # Acknowledged the old way (plain XACK, as before this cleanup existed): the entries stay.
        await redis.xack("s", "g", *[e.id for e in entries if e.id != ids[3]])
        assert await redis.xlen("s") == 10
        assert await consumer.trim() == 3  # ids[0..2]: before the oldest pending one, ids[3]
        remaining = [i.decode() for i, _ in await redis.xrange("s")]
        assert remaining == ids[3:]
        await redis.xack("s", "g", ids[3])
        assert await consumer.trim() == 3  # up to the first unread entry, ids[6]
        assert [i.decode() for i, _ in await redis.xrange("s")] == ids[6:]
        # A stream nobody has joined yet is left alone.
        await publish(redis, "other", envelope(1))
        assert await Consumer(redis, "other", "g", FAST).trim() == 0
        assert await redis.xlen("other") == 1
    finally:
        await redis.aclose()


async def test_reclaim_reaches_an_orphan_behind_many_live_entries(redis_url: str) -> None:
    """XAUTOCLAIM looks at 10 x COUNT pending entries per call; restarting at 0-0 never gets past the live
    consumer's older entries, following the cursor does."""
    redis: Redis = connect(redis_url)
    try:
        live = Consumer(redis, "s", "g", FAST, name="live")
        dead = Consumer(redis, "s", "g", FAST, name="dead")
        reclaimer = Consumer(redis, "s", "g", FAST, name="reclaimer")
        await live.ensure_group()
        for n in range(40):
            await publish(redis, "s", envelope(n))
        live_entries = await live.read_new(40)
        orphan_id = await publish(redis, "s", envelope(99))
        [orphan] = await dead.read_new(1)
        assert orphan.id == orphan_id
        await asyncio.sleep(FAST.bus_claim_idle_ms / 1000 * 1.5)  # the orphan is idle long enough

        reclaimed = []
        for _ in range(10):
            await live.heartbeat([e.id for e in live_entries])  # the live consumer is still working
            reclaimed += await reclaimer.reclaim(1)
            if reclaimed:
                break
        assert [e.id for e in reclaimed] == [orphan_id]
    finally:
        await redis.aclose()
