"""SIGTERM finishes the deliveries in flight; without the auth service nothing is sent or bounced."""

import asyncio

from shared.body_store import RedisBodyStore
from shared.streams import OUTBOUND, RELAY_GROUP
from tests.fixtures.ports import free_port
from tests.integration.relay.conftest import dsns, local_notices, submit, wait_until
from tests.integration.relay.sinks import SinkBehaviour


async def test_sigterm_finishes_the_delivery_in_flight(world, redis) -> None:
    sink = world.sink("127.0.5.9", SinkBehaviour(stall_data=1, stall_seconds=1.5))
    relay = world.relay()
    envelope = await submit(redis, ["bob@slow.world.test"], "in-flight")
    assert await asyncio.to_thread(sink.handler.stalled.wait, 20), "the relay never reached DATA"

    assert await asyncio.to_thread(relay.stop) == 0
    [got] = sink.messages  # delivered before the relay exited
    assert got.rcpt_tos == ["bob@slow.world.test"]
    assert (await redis.xpending(OUTBOUND, RELAY_GROUP))["pending"] == 0
    assert await RedisBodyStore(redis).get(envelope.body_id) is None


async def test_no_auth_service_no_bounce_until_it_is_back(world, redis) -> None:
    # Nothing listens at this auth URL: the relay cannot learn the local domains to route a bounce.
    relay = world.relay(YUBIN_AUTH_URL=f"http://127.0.0.1:{free_port()}")
    envelope = await submit(redis, ["bob@nullmx.world.test"], "no-auth")
    relay.wait_for_log("dependency unavailable")  # an outage: retried in place, never a dead letter
    assert (await redis.xpending(OUTBOUND, RELAY_GROUP))["pending"] == 1
    assert await local_notices(redis) == []
    assert await RedisBodyStore(redis).get(envelope.body_id) is not None
    relay.stop()

    world.relay()  # the auth service is reachable again: the pending entry is reclaimed and bounced
    [dsn] = await dsns(redis, 1)
    assert dsn.recipients["bob@nullmx.world.test"]["Status"] == "5.1.10"

    async def acknowledged():
        return (await redis.xpending(OUTBOUND, RELAY_GROUP))["pending"] == 0

    await wait_until(acknowledged, what="the entry to be acknowledged")
