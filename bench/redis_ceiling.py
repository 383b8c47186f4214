"""`python -m bench.redis_ceiling`: how many messages per second one site's Redis sustains for our mix.

One redis-server with the project's redis.conf (AOF, `appendfsync always`) on a free loopback port, and
the Redis work a locally delivered message costs, done with the project's own code paths:

- accept (submission/MX): `shared.enqueue.enqueue`, one MULTI/EXEC (body, holders, envelope, trace);
- consume (delivery): `Consumer.read_new` (XREADGROUP, COUNT > 1), GET of the body, then one MULTI/EXEC
  with the trace event, the body release and the acknowledgement (XACK + XDEL).

A relayed message costs about the same at each site (an enqueue at the sender, a consume there, then the
same again at the receiver). The Python clients are the services' own, so they are part of what is
measured; `--producers` / `--consumers` sessions run as separate processes so the client side can use both
cores. The figure is the rate at which Redis itself saturates (its CPU near 100 % of one core, or the AOF
fsync), which is the ceiling a site cannot pass without a second Redis (docs/scaling.md).
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path

from shared.body_store import RedisBodyStore, holder
from shared.bus import Consumer, stage_publish
from shared.config.base import BusSettings
from shared.enqueue import enqueue
from shared.models import Envelope, TraceEvent
from shared.redis_client import connect
from shared.streams import DELIVERY_GROUP, LOCAL_DELIVERY, TRACE, TRACE_MAXLEN
from tests.fixtures.redis_server import RedisServer

BODY = b"Subject: ceiling\r\n\r\n" + b"x" * 4000 + b"\r\n"


def envelope(n: int, producer: int) -> Envelope:
    return Envelope(
        queue_id=f"{producer:02d}{n:010d}",
        message_id=f"<{producer}.{n}@bench.test>",
        sender="bench@alpha.test",
        recipients=["bench@alpha.test"],
        body_id="",  # enqueue fills it in
    )


async def produce(url: str, producer: int, count: int) -> None:
    redis = connect(url)
    try:
        for n in range(count):
            env = envelope(n, producer)
            trace = TraceEvent(
                queue_id=env.queue_id, message_id=env.message_id, service="bench", event="accepted"
            )
            await enqueue(redis, BODY, {LOCAL_DELIVERY: env}, trace)
    finally:
        await redis.aclose()


async def consume(url: str, consumer: int, deadline: float) -> int:
    redis = connect(url)
    bus = Consumer(redis, LOCAL_DELIVERY, DELIVERY_GROUP, BusSettings(), name=f"ceiling-{consumer}")
    bodies = RedisBodyStore(redis)
    done = 0
    try:
        while time.monotonic() < deadline:
            entries = await bus.read_new(count=16, block_ms=200)
            if not entries:
                continue
            for entry in entries:
                env = Envelope.model_validate_json(entry.data)
                await bodies.get(env.body_id)
                async with redis.pipeline(transaction=True) as pipe:
                    event = TraceEvent(
                        queue_id=env.queue_id, message_id=env.message_id, service="bench", event="stored"
                    )
                    stage_publish(pipe, TRACE, event, maxlen=TRACE_MAXLEN)
                    bodies.stage_release(pipe, env.body_id, holder(LOCAL_DELIVERY, env.queue_id))
                    bus.stage_ack(pipe, entry)
                    await pipe.execute()
                done += 1
    finally:
        await redis.aclose()
    return done


def producer_process(url: str, producer: int, count: int) -> None:
    asyncio.run(produce(url, producer, count))


def consumer_process(url: str, consumer: int, deadline_s: float, results) -> None:
    results.put(asyncio.run(consume(url, consumer, time.monotonic() + deadline_s)))


def redis_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_once(count: int, producers: int, consumers: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="yubin-ceiling-") as tmp:
        server = RedisServer(Path(tmp)).start()
        try:
            asyncio.run(
                Consumer(connect(server.url), LOCAL_DELIVERY, DELIVERY_GROUP, BusSettings()).ensure_group()
            )
            per_producer = count // producers
            results: multiprocessing.Queue = multiprocessing.Queue()
            cpu0, start = redis_cpu_s(server.proc.pid), time.monotonic()
            workers = [
                multiprocessing.Process(target=producer_process, args=(server.url, p, per_producer))
                for p in range(producers)
            ] + [
                multiprocessing.Process(target=consumer_process, args=(server.url, c, 600.0, results))
                for c in range(consumers)
            ]
            for worker in workers:
                worker.start()
            for worker in workers[:producers]:
                worker.join()
                if worker.exitcode != 0:
                    raise RuntimeError(f"a producer failed (exit {worker.exitcode})")
            # The consumers stop once the stream is drained: wait until every message was consumed.
            import redis as sync_redis

            client = sync_redis.Redis.from_url(server.url)
            while client.xlen(LOCAL_DELIVERY) > 0:
                time.sleep(0.02)
            elapsed = time.monotonic() - start
            cpu = redis_cpu_s(server.proc.pid) - cpu0
            for worker in workers[producers:]:
                worker.terminate()
                worker.join()
            total = per_producer * producers
            return {
                "messages": total,
                "seconds": round(elapsed, 2),
                "msg_per_s": round(total / elapsed, 1),
                "redis_cpu_ms_per_msg": round(1000 * cpu / total, 3),
                "redis_cpu_share": round(cpu / elapsed, 2),
                "commands_per_msg": round(client.info("stats")["total_commands_processed"] / total, 1),
            }
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.redis_ceiling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("-n", "--count", type=int, default=20000, help="messages per run (default 20000)")
    parser.add_argument("--producers", type=int, default=4, help="accepting sessions (processes; default 4)")
    parser.add_argument("--consumers", type=int, default=2, help="delivery workers (processes; default 2)")
    parser.add_argument("--runs", type=int, default=3, help="runs; the median is reported (default 3)")
    args = parser.parse_args()
    runs = [run_once(args.count, args.producers, args.consumers) for _ in range(args.runs)]
    for run in runs:
        print(json.dumps(run))
    median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    print("median:", json.dumps(median))


if __name__ == "__main__":
    main()
