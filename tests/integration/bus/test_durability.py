"""What Redis acknowledged is on disk: a SIGKILLed redis-server comes back with every acknowledged write."""

import pytest

from shared.body_store import RedisBodyStore
from shared.bus import Consumer, publish
from shared.config import BusSettings
from shared.enqueue import enqueue
from shared.models import Envelope
from shared.redis_client import connect
from shared.streams import LOCAL_DELIVERY, OUTBOUND

SETTINGS = BusSettings(bus_block_ms=50, bus_claim_idle_ms=300)


@pytest.mark.parametrize("how", ["kill", "term"])
async def test_acknowledged_writes_survive_a_restart(redis_factory, how: str) -> None:
    server = redis_factory()
    redis = connect(server.url)
    envelope = Envelope(
        sender="alice@alpha.test", recipients=["bob@beta.test", "carol@alpha.test"], body_id="-"
    )
    published = await enqueue(
        redis, b"Subject: hi\r\n\r\nbody\r\n", {LOCAL_DELIVERY: envelope, OUTBOUND: envelope}
    )
    consumer = Consumer(redis, "s", "g", SETTINGS, name="c")
    await consumer.ensure_group()
    acked_id = await publish(redis, "s", envelope)
    pending_id = await publish(redis, "s", envelope)
    entries = await consumer.read_new(1)
    await consumer.ack(entries[0])
    await redis.aclose()

    # SIGKILL gives Redis no chance to flush anything more: only appendfsync always saves us here.
    server.kill() if how == "kill" else server.stop()
    server.start()

    redis = connect(server.url)
    try:
        body_id = published[LOCAL_DELIVERY].body_id
        store = RedisBodyStore(redis)
        assert await store.get(body_id) == b"Subject: hi\r\n\r\nbody\r\n"
        assert await store.holders(body_id) == {
            f"{LOCAL_DELIVERY}:{envelope.queue_id}",
            f"{OUTBOUND}:{envelope.queue_id}",
        }
        for stream in (LOCAL_DELIVERY, OUTBOUND):
            [(_, fields)] = await redis.xrange(stream)
            assert Envelope.model_validate_json(fields[b"data"]) == published[stream]
        # The acknowledgement survived too: only the unread entry is left for the group.
        assert entries[0].id == acked_id
        pending = await redis.xpending("s", "g")
        assert pending["pending"] == 0
        again = await Consumer(redis, "s", "g", SETTINGS, name="c2").read_new(10)
        assert [e.id for e in again] == [pending_id]
    finally:
        await redis.aclose()
