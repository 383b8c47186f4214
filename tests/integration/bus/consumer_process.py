"""A stand-alone consumer for the bus tests: run as a real process so a test can SIGKILL it mid-work.

Usage: python -m tests.integration.bus.consumer_process REDIS_URL STREAM GROUP NAME MODE
MODE "hang": announce each entry on `<stream>:started` then block forever (the test kills us).
MODE "work": record each entry's payload in the list `<stream>:done`, then return (ack by run_consumer).
"""

import asyncio
import sys

from shared.bus import Consumer, Entry, run_consumer
from shared.config import BusSettings
from shared.lifecycle import stop_on_signals
from shared.redis_client import connect


async def main(url: str, stream: str, group: str, name: str, mode: str) -> None:
    redis = connect(url)
    settings = BusSettings(bus_block_ms=100, bus_claim_idle_ms=500, bus_max_deliveries=5, concurrency=4)
    consumer = Consumer(redis, stream, group, settings, name=name)
    stop = stop_on_signals()

    async def handle(entry: Entry) -> None:
        await redis.rpush(f"{stream}:started", f"{name}:{entry.id}")
        if mode == "hang":
            await asyncio.Event().wait()
        await redis.rpush(f"{stream}:done", entry.data)

    await run_consumer(consumer, handle, stop)
    await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
