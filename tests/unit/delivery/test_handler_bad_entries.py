"""Entries the handler cannot work on go to the dead-letter stream instead of being retried forever."""

from pathlib import Path

from redis.asyncio import Redis

from services.delivery.handler import MARKER, Deliverer
from shared.auth_client import AuthClient
from shared.bus import Consumer, Entry, publish
from shared.config.delivery import DeliverySettings
from shared.models import Envelope
from shared.redis_client import connect
from shared.streams import DEAD_LETTER, DELIVERY_GROUP, LOCAL_DELIVERY


async def deliver_first_entry(redis: Redis, tmp_path: Path) -> Entry:
    # The auth service is never asked for these entries, so nothing needs to listen at auth_url.
    settings = DeliverySettings(
        redis_url="redis://unused", auth_url="http://127.0.0.1:9", service_token="t" * 16, mail_root=tmp_path
    )
    consumer = Consumer(redis, LOCAL_DELIVERY, DELIVERY_GROUP, settings, name="t")
    await consumer.ensure_group()
    [entry] = await consumer.read_new(1, block_ms=100)
    async with AuthClient(settings) as auth:
        await Deliverer(settings, redis, auth, consumer).handle(entry)
    return entry


async def test_an_entry_that_is_not_an_envelope_is_dead_lettered(redis_url: str, tmp_path: Path) -> None:
    redis = connect(redis_url)
    try:
        await redis.xadd(LOCAL_DELIVERY, {"type": "Envelope", "data": b'{"recipients": []}'})
        await deliver_first_entry(redis, tmp_path)
        [(_id, fields)] = await redis.xrange(DEAD_LETTER)
        assert fields[b"reason"].startswith(b"not a valid Envelope")
        assert (await redis.xpending(LOCAL_DELIVERY, DELIVERY_GROUP))["pending"] == 0
    finally:
        await redis.aclose()


async def test_a_missing_body_is_dead_lettered_unless_every_recipient_was_stored(
    redis_url: str, tmp_path: Path
) -> None:
    redis = connect(redis_url)
    try:
        done = Envelope(recipients=["ann@alpha.test", "bob@alpha.test"], body_id="gone1")
        await redis.set(MARKER.format(done.queue_id, "ann@alpha.test"), b"1")
        await redis.set(MARKER.format(done.queue_id, "bob@alpha.test"), b"1")
        await publish(redis, LOCAL_DELIVERY, done)
        await deliver_first_entry(redis, tmp_path)
        assert await redis.xlen(DEAD_LETTER) == 0  # finished by another consumer: nothing wrong

        lost = Envelope(recipients=["ann@alpha.test", "bob@alpha.test"], body_id="gone2")
        await redis.set(MARKER.format(lost.queue_id, "ann@alpha.test"), b"1")
        await publish(redis, LOCAL_DELIVERY, lost)
        await deliver_first_entry(redis, tmp_path)
        [(_id, fields)] = await redis.xrange(DEAD_LETTER)
        assert fields[b"reason"] == b"body gone2 missing"
    finally:
        await redis.aclose()
