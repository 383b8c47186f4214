"""Bodies are stored once, as raw bytes, and deleted when the last holder releases them."""

from shared.body_store import RedisBodyStore, holder
from shared.enqueue import enqueue
from shared.models import Envelope
from shared.redis_client import connect
from shared.streams import LOCAL_DELIVERY, OUTBOUND

BINARY = bytes(range(256)) * 40  # every octet value, no base64 anywhere


async def test_body_lives_until_every_holder_released(redis_url: str) -> None:
    redis = connect(redis_url)
    try:
        env = Envelope(sender="a@alpha.test", recipients=["b@beta.test"], body_id="-")
        published = await enqueue(redis, BINARY, {LOCAL_DELIVERY: env, OUTBOUND: env})
        body_id = published[OUTBOUND].body_id
        assert published[LOCAL_DELIVERY].body_id == body_id
        assert published[OUTBOUND].size == len(BINARY)
        store = RedisBodyStore(redis)
        assert await store.get(body_id) == BINARY
        assert await store.size(body_id) == len(BINARY)
        # Exactly one copy in Redis, stored raw.
        assert await redis.strlen(f"yubin:body:{body_id}") == len(BINARY)

        assert await store.release(body_id, holder(LOCAL_DELIVERY, env.queue_id)) is False
        # A redelivered entry releases again: harmless, the other holder still counts.
        assert await store.release(body_id, holder(LOCAL_DELIVERY, env.queue_id)) is False
        assert await store.get(body_id) == BINARY

        assert await store.release(body_id, holder(OUTBOUND, env.queue_id)) is True
        assert await store.get(body_id) is None
        assert await redis.exists(f"yubin:body:{body_id}:holders") == 0
    finally:
        await redis.aclose()


async def test_staged_release_in_a_transaction(redis_url: str) -> None:
    redis = connect(redis_url)
    try:
        env = Envelope(sender="a@alpha.test", recipients=["b@beta.test"], body_id="-")
        published = await enqueue(redis, b"x", {OUTBOUND: env})
        body_id = published[OUTBOUND].body_id
        store = RedisBodyStore(redis)
        async with redis.pipeline(transaction=True) as pipe:
            store.stage_hold(pipe, body_id, "bounce:1")
            store.stage_release(pipe, body_id, holder(OUTBOUND, env.queue_id))
            await pipe.execute()
        assert await store.holders(body_id) == {"bounce:1"}
        assert await store.get(body_id) == b"x"
    finally:
        await redis.aclose()
