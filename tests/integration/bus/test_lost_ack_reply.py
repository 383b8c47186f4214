"""A handler whose final transaction (with the entry's acknowledgement) committed, but whose reply was lost
in a dropped connection, is not run again: the bus sees the entry is no longer pending.

Found by `make chaos` (seed 3): beta's Redis was killed just after the relay's final EXEC committed; the relay
took the dropped reply for an outage, ran the handler again, found the body already released and
dead-lettered an entry whose message had been delivered.
"""

import asyncio

from shared.bus import Consumer, publish, run_consumer
from shared.config.base import BusSettings
from shared.models import Envelope
from shared.redis_client import connect
from tests.fixtures.lost_reply_proxy import LostExecReplyProxy

STREAM, GROUP = "test:lost-ack", "workers"
FAST = BusSettings(bus_block_ms=50, bus_claim_idle_ms=300, bus_max_deliveries=3, concurrency=1)


async def test_a_committed_ack_whose_reply_was_lost_is_not_handled_again(
    redis_server, redis_url: str
) -> None:
    direct = connect(redis_url)
    await publish(direct, STREAM, Envelope(sender="a@alpha.test", recipients=["b@beta.test"], body_id="-"))
    runs = 0
    async with LostExecReplyProxy(redis_server.host, redis_server.port) as proxy:
        redis = connect(proxy.url)
        consumer = Consumer(redis, STREAM, GROUP, FAST, name="worker")
        await consumer.ensure_group()

        async def handler(entry) -> None:
            nonlocal runs
            runs += 1
            async with redis.pipeline(transaction=True) as pipe:
                pipe.incr("test:work-done")  # the work, durable in the same transaction as the ack
                consumer.stage_ack(pipe, entry)
                await pipe.execute()

        stop = asyncio.Event()
        task = asyncio.create_task(run_consumer(consumer, handler, stop))
        try:
            for _ in range(100):
                if proxy.cuts and runs and not await direct.xlen(STREAM):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.5)  # time for the outage backoff and a second run, if there were one
        finally:
            stop.set()
            await task
            await redis.aclose()
    try:
        assert proxy.cuts == 1
        assert await direct.get("test:work-done") == b"1"
        assert runs == 1
        assert await direct.xlen("yubin:stream:dead") == 0
    finally:
        await direct.aclose()
