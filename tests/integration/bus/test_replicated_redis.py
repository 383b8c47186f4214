"""The services' Redis client against a replicated Redis (docs/ha.md): a primary, a replica and three
Sentinels as real processes (`tests.fixtures.redis_ha`).

- A transaction returns only once a replica has it; a replica that hangs makes it fail (`NotReplicated`,
  an outage) instead of returning as if the write were safe.
- After `kill -9` of the primary the same client finds the promoted replica through Sentinel, with every
  write it was told had succeeded.
"""

import signal
import time

import pytest
from redis.exceptions import RedisError

from shared.body_store import BODY_KEY
from shared.enqueue import enqueue
from shared.models import Envelope
from shared.outages import is_outage
from shared.redis_client import NotReplicated, connect_sentinel
from shared.streams import LOCAL_DELIVERY
from tests.fixtures.redis_ha import MASTER, ReplicatedRedis

ENVELOPE = Envelope(sender="alice@alpha.test", recipients=["bob@alpha.test"], body_id="-")


async def test_a_transaction_is_on_the_replica_when_it_returns(replicated_redis: ReplicatedRedis) -> None:
    redis = connect_sentinel(replicated_redis.sentinel_addresses, MASTER, wait_timeout_ms=5000)
    try:
        published = await enqueue(redis, b"Subject: one\r\n\r\nbody\r\n", {LOCAL_DELIVERY: ENVELOPE})
        replica = replicated_redis.replica().client()
        # Read at once from the replica itself: WAIT returned, so the replica has received it.
        assert (
            replica.get(BODY_KEY.format(published[LOCAL_DELIVERY].body_id)) == b"Subject: one\r\n\r\nbody\r\n"
        )
    finally:
        await redis.aclose()


async def test_a_hung_replica_makes_the_transaction_fail_as_an_outage(
    replicated_redis: ReplicatedRedis,
) -> None:
    redis = connect_sentinel(replicated_redis.sentinel_addresses, MASTER, wait_timeout_ms=300)
    replica = replicated_redis.replica()
    # SIGSTOP: the primary still counts the replica as good (min-replicas-max-lag), only WAIT can tell.
    replica.send_signal(signal.SIGSTOP)
    try:
        with pytest.raises(NotReplicated) as raised:
            await enqueue(redis, b"Subject: two\r\n\r\nbody\r\n", {LOCAL_DELIVERY: ENVELOPE})
        assert is_outage(raised.value)
        # A transaction that writes nothing (the auth service's page of users) has nothing to wait for.
        async with redis.pipeline(transaction=True) as pipe:
            pipe.zrange("yubin:users", 0, 9)
            pipe.zcard("yubin:users")
            assert await pipe.execute() == [[], 0]
    finally:
        replica.send_signal(signal.SIGCONT)
        await redis.aclose()


async def test_the_client_follows_a_failover_with_every_acknowledged_write(
    replicated_redis: ReplicatedRedis,
) -> None:
    redis = connect_sentinel(replicated_redis.sentinel_addresses, MASTER, wait_timeout_ms=5000)
    try:
        acknowledged = []
        for n in range(20):
            published = await enqueue(
                redis, f"Subject: {n}\r\n\r\nbody\r\n".encode(), {LOCAL_DELIVERY: ENVELOPE}
            )
            acknowledged.append(published[LOCAL_DELIVERY].body_id)
        old = replicated_redis.primary()
        old.stop(signal.SIGKILL)
        # Until a replica is promoted (and has a replica of its own again) writes fail; keep trying, as
        # SMTP clients and consumers do.
        deadline = time.monotonic() + 60
        restarted = False
        while True:
            if not restarted and replicated_redis.primary_port() not in (None, old.port):
                old.start()  # comes back; Sentinel makes it a replica of the new primary
                restarted = True
            try:
                published = await enqueue(
                    redis, b"Subject: after\r\n\r\nbody\r\n", {LOCAL_DELIVERY: ENVELOPE}
                )
                break
            except RedisError as exc:
                assert is_outage(exc), exc
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert restarted, "the write went through before Sentinel promoted the replica"
        new = replicated_redis.primary()
        assert new.port != old.port
        client = new.client()
        for body_id in [*acknowledged, published[LOCAL_DELIVERY].body_id]:
            assert client.exists(BODY_KEY.format(body_id)), body_id
    finally:
        await redis.aclose()
