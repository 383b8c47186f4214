"""The retry queue on a real Redis: due envelopes go back onto their stream once, the others wait."""

import asyncio
import time

from services.delivery.retry_queue import DEFERRED, delivery_retry_queue
from services.relay.retry import RETRY_KEY, relay_retry_queue
from shared.bus import Consumer
from shared.config import BusSettings
from shared.models import Envelope, RecipientState, RecipientStatus
from shared.redis_client import connect
from shared.retry_queue import ERRORS_SUFFIX
from shared.streams import DELIVERY_GROUP, LOCAL_DELIVERY, OUTBOUND, RELAY_GROUP


async def test_only_due_envelopes_are_moved_and_only_once(redis_url: str) -> None:
    redis = connect(redis_url)
    try:
        for queue, key, stream, group in (
            (delivery_retry_queue(redis), DEFERRED, LOCAL_DELIVERY, DELIVERY_GROUP),
            (relay_retry_queue(redis), RETRY_KEY, OUTBOUND, RELAY_GROUP),
        ):
            consumer = Consumer(redis, stream, group, BusSettings(), name="t")
            await consumer.ensure_group()
            now = time.time()
            due = Envelope(recipients=["ann@alpha.test"], body_id="b1", attempts=1)
            later = Envelope(recipients=["bob@alpha.test"], body_id="b2", attempts=1)
            async with redis.pipeline(transaction=True) as pipe:
                queue.stage_defer(pipe, due, now - 1)
                queue.stage_defer(pipe, later, now + 3600)
                await pipe.execute()

            moved, next_due = await queue.move_due(now)
            assert moved == 1
            assert next_due is not None and abs(next_due - (now + 3600)) < 1
            assert (await queue.move_due(now))[0] == 0

            entries = await consumer.read_new(10, block_ms=100)
            assert [e.parse(Envelope) for e in entries] == [due]
            assert await redis.zcard(key) == 1
            assert [e for e, _ in await queue.envelopes()] == [later]
    finally:
        await redis.aclose()


async def test_the_scheduler_wakes_for_a_deferral_due_before_its_next_look(redis_url: str) -> None:
    redis = connect(redis_url)
    stop = asyncio.Event()
    queue = relay_retry_queue(redis)
    scheduler = asyncio.create_task(queue.run(stop, max_sleep=3600))  # it would sleep an hour
    try:
        await asyncio.sleep(0.2)  # asleep now, on an empty queue
        async with redis.pipeline(transaction=True) as pipe:
            queue.stage_defer(pipe, Envelope(recipients=["ann@alpha.test"], body_id="b"), time.time())
            await pipe.execute()
        queue.notify()
        for _ in range(100):
            if await redis.xlen(OUTBOUND):
                break
            await asyncio.sleep(0.05)
        assert await redis.xlen(OUTBOUND) == 1 and await redis.zcard(RETRY_KEY) == 0
    finally:
        stop.set()
        await scheduler
        await redis.aclose()


async def test_the_last_errors_live_as_long_as_the_envelope_waits(redis_url: str) -> None:
    redis = connect(redis_url)
    try:
        queue = relay_retry_queue(redis)
        now = time.time()
        due = Envelope(recipients=["ann@alpha.test"], body_id="b1", attempts=1)
        later = Envelope(recipients=["bob@alpha.test"], body_id="b2", attempts=1)
        async with redis.pipeline(transaction=True) as pipe:
            for envelope, when in ((due, now - 1), (later, now + 3600)):
                status = RecipientStatus(
                    recipient=envelope.recipients[0],
                    state=RecipientState.DEFERRED,
                    status="4.4.1",
                    diagnostic="no answer",
                )
                queue.stage_defer(pipe, envelope, when, [status])
            await pipe.execute()
        waiting, total = await queue.waiting(10)
        assert total == 2 and [w.errors for w in waiting] == [
            {"ann@alpha.test": "4.4.1 no answer"},
            {"bob@alpha.test": "4.4.1 no answer"},
        ]
        await queue.move_due(now)
        assert await redis.hlen(RETRY_KEY + ERRORS_SUFFIX) == 1  # the moved one's errors went with it
        [left], _ = await queue.waiting(10)
        assert left.envelope == later and left.errors == {"bob@alpha.test": "4.4.1 no answer"}
    finally:
        await redis.aclose()
