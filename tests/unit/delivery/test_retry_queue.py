"""The deferred queue on a real Redis: due envelopes go back onto the stream, once, others wait."""

import time

from services.delivery.retry_queue import DEFERRED, RetryQueue, stage_defer
from shared.bus import Consumer
from shared.config import BusSettings
from shared.models import Envelope
from shared.redis_client import connect
from shared.streams import DELIVERY_GROUP, LOCAL_DELIVERY


async def test_only_due_envelopes_are_moved_and_only_once(redis_url: str) -> None:
    redis = connect(redis_url)
    try:
        consumer = Consumer(redis, LOCAL_DELIVERY, DELIVERY_GROUP, BusSettings(), name="t")
        await consumer.ensure_group()
        now = time.time()
        due = Envelope(recipients=["ann@alpha.test"], body_id="b1", attempts=1)
        later = Envelope(recipients=["bob@alpha.test"], body_id="b2", attempts=1)
        async with redis.pipeline(transaction=True) as pipe:
            stage_defer(pipe, due, now - 1)
            stage_defer(pipe, later, now + 3600)
            await pipe.execute()

        queue = RetryQueue(redis)
        moved, next_due = await queue.move_due(now)
        assert moved == 1
        assert next_due is not None and abs(next_due - (now + 3600)) < 1
        assert (await queue.move_due(now))[0] == 0

        entries = await consumer.read_new(10, block_ms=100)
        assert [e.parse(Envelope) for e in entries] == [due]
        assert await redis.zcard(DEFERRED) == 1
    finally:
        await redis.aclose()
