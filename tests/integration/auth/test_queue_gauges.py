"""The site's queue gauges (exported by the auth service) read a real Redis the services filled through
their own code: enqueue, a consumer reading, a dead letter, deferrals into both retry sets."""

import time

from prometheus_client import CollectorRegistry

from services.delivery.retry_queue import delivery_retry_queue
from services.relay.retry import relay_retry_queue
from shared.bus import Consumer
from shared.config import BusSettings
from shared.enqueue import enqueue
from shared.models import Envelope
from shared.queue_gauges import QueueGauges
from shared.redis_client import connect
from shared.streams import DELIVERY_GROUP, LOCAL_DELIVERY, OUTBOUND
from tests.fixtures.ports import free_port

SETTINGS = BusSettings(bus_block_ms=50)


def gauges(redis_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(QueueGauges(redis_url))
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
    }


def envelope(recipient: str) -> Envelope:
    return Envelope(sender="alice@alpha.test", recipients=[recipient], body_id="-")


async def test_depth_pending_age_retry_sets_and_dead_letters(redis_url: str) -> None:
    empty = gauges(redis_url)
    assert empty[("yubin_queue_redis_up", ())] == 1
    assert empty[("yubin_queue_depth", (("stream", "local"),))] == 0
    assert empty[("yubin_queue_oldest_age_seconds", (("stream", "outbound"),))] == 0
    assert not [key for key in empty if key[0] == "yubin_queue_pending"]  # nobody has read yet

    redis = connect(redis_url)
    try:
        for n in range(3):
            await enqueue(
                redis, b"Subject: x\r\n\r\nbody\r\n", {LOCAL_DELIVERY: envelope(f"u{n}@alpha.test")}
            )
        await enqueue(redis, b"Subject: y\r\n\r\nbody\r\n", {OUTBOUND: envelope("bob@beta.test")})
        consumer = Consumer(redis, LOCAL_DELIVERY, DELIVERY_GROUP, SETTINGS, name="c")
        await consumer.ensure_group()
        first, _pending = await consumer.read_new(2)
        await consumer.dead_letter(first, "KeyError: 'a bug'")  # acknowledged, and off the stream
        async with redis.pipeline(transaction=True) as pipe:
            relay_retry_queue(redis).stage_defer(pipe, envelope("c@gamma.test"), time.time() + 60)
            relay_retry_queue(redis).stage_defer(pipe, envelope("d@gamma.test"), time.time() + 60)
            delivery_retry_queue(redis).stage_defer(pipe, envelope("e@alpha.test"), time.time() + 60)
            await pipe.execute()
        time.sleep(1.1)
        seen = gauges(redis_url)
    finally:
        await redis.aclose()

    assert seen[("yubin_queue_depth", (("stream", "local"),))] == 2  # one read and pending, one unread
    assert seen[("yubin_queue_depth", (("stream", "outbound"),))] == 1
    assert seen[("yubin_queue_pending", (("group", "delivery"), ("stream", "local")))] == 1
    assert 1 <= seen[("yubin_queue_oldest_age_seconds", (("stream", "local"),))] < 60
    assert seen[("yubin_retry_queue_size", (("queue", "relay"),))] == 2
    assert seen[("yubin_retry_queue_size", (("queue", "delivery"),))] == 1
    assert seen[("yubin_dead_letters", ())] == 1


def test_redis_down_still_answers_the_scrape() -> None:
    seen = gauges(f"redis://127.0.0.1:{free_port()}/0")
    assert seen == {("yubin_queue_redis_up", ()): 0}
