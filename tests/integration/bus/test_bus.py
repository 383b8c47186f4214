"""The Redis-streams bus against a real redis-server: publish, consume, ack, reclaim, dead-letter, shutdown."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis

from shared.bus import Consumer, Entry, publish, run_consumer
from shared.config import BusSettings
from shared.models import Envelope, TraceEvent
from shared.redis_client import connect

ROOT = Path(__file__).resolve().parents[3]
FAST = BusSettings(bus_block_ms=50, bus_claim_idle_ms=300, bus_max_deliveries=3, concurrency=4)


@pytest.fixture
async def redis(redis_url: str):
    client = connect(redis_url)
    yield client
    await client.aclose()


def envelope(n: int) -> Envelope:
    return Envelope(sender="a@alpha.test", recipients=[f"user{n}@beta.test"], body_id=f"b{n}")


async def pending_count(redis: Redis, stream: str, group: str) -> int:
    return (await redis.xpending(stream, group))["pending"]


async def test_publish_read_ack(redis: Redis) -> None:
    consumer = Consumer(redis, "s", "g", FAST, name="c1")
    await consumer.ensure_group()
    await consumer.ensure_group()  # idempotent: every replica calls it at start
    sent = [envelope(n) for n in range(3)]
    ids = [await publish(redis, "s", e) for e in sent]

    entries = await consumer.read_new(10)
    assert [e.id for e in entries] == ids
    assert [e.parse(Envelope) for e in entries] == sent
    assert {e.kind for e in entries} == {"Envelope"}
    assert await pending_count(redis, "s", "g") == 3

    for entry in entries:
        await consumer.ack(entry)
    assert await pending_count(redis, "s", "g") == 0
    assert await consumer.read_new(10, block_ms=20) == []


async def test_two_consumers_share_the_work(redis: Redis) -> None:
    first = Consumer(redis, "s", "g", FAST, name="c1")
    second = Consumer(redis, "s", "g", FAST, name="c2")
    await first.ensure_group()
    for n in range(6):
        await publish(redis, "s", envelope(n))
    a = await first.read_new(3)
    b = await second.read_new(10)
    assert len(a) == 3 and len(b) == 3
    assert not {e.id for e in a} & {e.id for e in b}


async def test_run_consumer_processes_and_acks_then_stops_gracefully(redis: Redis) -> None:
    consumer = Consumer(redis, "s", "g", FAST, name="c1")
    seen: list[str] = []
    stop = asyncio.Event()

    async def handle(entry: Entry) -> None:
        seen.append(entry.parse(Envelope).recipients[0])
        if len(seen) == 5:
            stop.set()

    for n in range(5):
        await publish(redis, "s", envelope(n))
    await asyncio.wait_for(run_consumer(consumer, handle, stop), 10)
    assert sorted(seen) == sorted(f"user{n}@beta.test" for n in range(5))
    assert await pending_count(redis, "s", "g") == 0


async def test_failing_handler_is_retried_then_dead_lettered(redis: Redis) -> None:
    consumer = Consumer(redis, "s", "g", FAST, name="c1")
    attempts: list[int] = []
    stop = asyncio.Event()

    async def handle(entry: Entry) -> None:
        attempts.append(entry.deliveries)
        raise RuntimeError("poison")

    poison = envelope(1)
    entry_id = await publish(redis, "s", poison)
    task = asyncio.create_task(run_consumer(consumer, handle, stop))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not await redis.xlen("yubin:stream:dead"):
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 10)

    assert attempts == [1, 2, 3]  # bus_max_deliveries=3: a fourth delivery goes to the dead letters
    dead = await redis.xrange("yubin:stream:dead")
    assert len(dead) == 1
    fields = dead[0][1]
    assert fields[b"entry_id"].decode() == entry_id
    assert fields[b"stream"] == b"s"
    assert b"delivered 4 times" in fields[b"reason"]
    assert b"last error: RuntimeError: poison" in fields[b"reason"]
    assert Envelope.model_validate_json(fields[b"data"]) == poison
    assert await pending_count(redis, "s", "g") == 0


async def test_slow_handler_keeps_its_entry(redis: Redis) -> None:
    """Heartbeats stop another consumer from reclaiming an entry that is still being worked on."""
    slow = Consumer(redis, "s", "g", FAST, name="slow")
    other = Consumer(redis, "s", "g", FAST, name="other")
    stop = asyncio.Event()
    done = asyncio.Event()

    async def handle(entry: Entry) -> None:
        await asyncio.sleep(FAST.bus_claim_idle_ms / 1000 * 4)
        done.set()

    await other.ensure_group()
    await publish(redis, "s", envelope(1))
    task = asyncio.create_task(run_consumer(slow, handle, stop))
    stolen = []
    while not done.is_set():
        stolen += await other.reclaim(10)
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert stolen == []
    assert await pending_count(redis, "s", "g") == 0


def start_consumer(redis_url: str, name: str, mode: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.bus.consumer_process", redis_url, "s", "g", name, mode],
        cwd=ROOT,
    )


async def wait_for_list(redis: Redis, key: str, length: int, timeout: float = 15) -> list[bytes]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = await redis.lrange(key, 0, -1)
        if len(items) >= length:
            return items
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{key} has fewer than {length} items")


async def test_consumer_killed_mid_work_is_reclaimed_by_another(redis_url: str, redis: Redis) -> None:
    entry_id = await publish(redis, "s", TraceEvent(queue_id="Q1", service="test", event="x"))
    doomed = start_consumer(redis_url, "doomed", "hang")
    try:
        started = await wait_for_list(redis, "s:started", 1)
        assert started == [f"doomed:{entry_id}".encode()]
    finally:
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait()
    assert await pending_count(redis, "s", "g") == 1  # the dead consumer never acknowledged it

    survivor = start_consumer(redis_url, "survivor", "work")
    try:
        done = await wait_for_list(redis, "s:done", 1)
        assert TraceEvent.model_validate_json(done[0]).queue_id == "Q1"
        deadline = time.monotonic() + 5
        while await pending_count(redis, "s", "g") and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert await pending_count(redis, "s", "g") == 0
    finally:
        os.kill(survivor.pid, signal.SIGTERM)
        assert survivor.wait(timeout=10) == 0  # graceful shutdown exits 0
    started = await redis.lrange("s:started", 0, -1)
    assert started == [f"doomed:{entry_id}".encode(), f"survivor:{entry_id}".encode()]


async def test_sigterm_finishes_in_flight_work(redis_url: str, redis: Redis) -> None:
    worker = start_consumer(redis_url, "w", "work")
    try:
        for n in range(20):
            await publish(redis, "s", envelope(n))
        await wait_for_list(redis, "s:done", 20)
    finally:
        os.kill(worker.pid, signal.SIGTERM)
        assert worker.wait(timeout=10) == 0
    assert await pending_count(redis, "s", "g") == 0
