"""kill -9 in the middle of a delivery: the message is delivered after the restart, nothing is lost."""

import asyncio

from shared.body_store import RedisBodyStore
from shared.streams import OUTBOUND, RELAY_GROUP
from tests.integration.relay.conftest import local_notices, received, retry_count, submit, wait_until
from tests.integration.relay.sinks import SinkBehaviour


async def test_sigkill_while_the_remote_stalls_in_data(world, redis) -> None:
    sink = world.sink("127.0.5.9", SinkBehaviour(stall_data=1))
    relay = world.relay(YUBIN_BUS_CLAIM_IDLE_MS="500")
    envelope = await submit(redis, ["bob@slow.world.test"], "stalled")

    assert await asyncio.to_thread(sink.handler.stalled.wait, 20), "the relay never reached DATA"
    relay.kill()
    pending = await redis.xpending(OUTBOUND, RELAY_GROUP)
    assert pending["pending"] == 1  # not acknowledged: the work is still owed

    world.relay(YUBIN_BUS_CLAIM_IDLE_MS="500")
    [got] = await received(sink)
    assert got.rcpt_tos == ["bob@slow.world.test"]

    async def finished():
        pending = await redis.xpending(OUTBOUND, RELAY_GROUP)
        gone = await RedisBodyStore(redis).get(envelope.body_id) is None
        return gone and pending["pending"] == 0

    await wait_until(finished, what="the entry to be acknowledged and the body released")
    assert len(sink.messages) == 1  # the stalled copy never got its 250, so exactly one
    assert await retry_count(redis) == 0
    assert await local_notices(redis) == []
