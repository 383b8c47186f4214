"""Connection reuse: the next message to the same server rides the connection the last one left open."""

import asyncio
from collections import Counter

from services.relay.retry import RETRY_KEY
from shared.models import TraceEvent
from shared.streams import OUTBOUND, RELAY_GROUP, TRACE
from tests.integration.relay.conftest import received, submit, wait_until
from tests.integration.relay.sinks import SinkBehaviour

SOURCE = "127.0.5.100"


def subjects(sink) -> Counter:
    return Counter(m.content.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode() for m in sink.messages)


async def all_acknowledged(redis) -> None:
    async def done() -> bool:
        return (await redis.xpending(OUTBOUND, RELAY_GROUP))["pending"] == 0

    await wait_until(done, what="every entry to be acknowledged")


async def test_two_messages_share_one_connection_from_the_source_address(world, redis) -> None:
    sink = world.sink("127.0.5.5")
    world.relay(YUBIN_RELAY_CONNECTION_CACHE_IDLE_S="30", YUBIN_RELAY_SOURCE_ADDRESS=SOURCE)
    await submit(redis, ["a@amx.world.test"], "first")
    await received(sink, 1)
    # Finished (acknowledged) means its connection is back in the cache: only then is reuse certain.
    await all_acknowledged(redis)
    await submit(redis, ["b@amx.world.test"], "second")
    first, second = await received(sink, 2)

    assert first.peer == second.peer  # one TCP connection carried both
    assert first.peer[0] == SOURCE  # bound to YUBIN_RELAY_SOURCE_ADDRESS
    assert sink.handler.transactions == {first.peer: 2}
    assert sink.handler.quits == 0  # still cached, waiting for a third


async def test_concurrent_deliveries_never_share_a_connection_at_once(world, redis) -> None:
    sink = world.sink("127.0.5.5")
    world.relay(YUBIN_RELAY_CONNECTION_CACHE_IDLE_S="30", YUBIN_CONCURRENCY="4")
    for n in range(24):
        await submit(redis, [f"user{n}@amx.world.test"], f"burst-{n}")
    await received(sink, 24)
    await all_acknowledged(redis)

    assert subjects(sink) == Counter({f"burst-{n}": 1 for n in range(24)})  # each exactly once
    # At most one connection per delivery running at once; later messages reused them.
    assert 1 <= len(sink.connections) <= 4
    assert await redis.zcard(RETRY_KEY) == 0


async def test_a_dead_cached_connection_is_replaced_without_loss_or_duplicates(world, redis) -> None:
    # The sink hangs up when a connection that brought a message starts a second one: each reuse of a
    # cached connection finds it dead after the RSET, and the relay must open a new one.
    sink = world.sink("127.0.5.5", SinkBehaviour(hang_up_on_reuse=True))
    world.relay(YUBIN_RELAY_CONNECTION_CACHE_IDLE_S="30")
    for n in range(3):
        await submit(redis, [f"user{n}@amx.world.test"], f"reuse-{n}")
        await received(sink, n + 1)
        # Only once it is acknowledged is its connection back in the cache for the next message to find.
        await all_acknowledged(redis)

    assert subjects(sink) == Counter({"reuse-0": 1, "reuse-1": 1, "reuse-2": 1})
    assert sink.handler.hang_ups == 2  # messages 2 and 3 each found the cached connection dead
    assert len(sink.connections) == 3
    assert await redis.zcard(RETRY_KEY) == 0  # nothing was deferred
    events = [TraceEvent.model_validate_json(f[b"data"]) for _, f in await redis.xrange(TRACE)]
    assert Counter(e.event for e in events if e.service == "relay") == Counter(
        {"mx-lookup": 3, "attempt": 3, "delivered": 3}
    )


async def test_idle_connections_are_closed_politely(world, redis) -> None:
    sink = world.sink("127.0.5.5")
    world.relay(YUBIN_RELAY_CONNECTION_CACHE_IDLE_S="0.2")
    await submit(redis, ["a@amx.world.test"], "first")
    await received(sink, 1)

    async def quit_sent() -> bool:
        return sink.handler.quits == 1

    await wait_until(quit_sent, what="QUIT on the idle connection")
    await submit(redis, ["b@amx.world.test"], "second")
    first, second = await received(sink, 2)
    assert first.peer != second.peer


async def test_reuse_off_quits_after_each_message(world, redis) -> None:
    sink = world.sink("127.0.5.5")
    world.relay(YUBIN_RELAY_CONNECTION_CACHE_IDLE_S="0")
    await submit(redis, ["a@amx.world.test"], "first")
    await received(sink, 1)
    # Finished (acknowledged) means its connection is back in the cache: only then is reuse certain.
    await all_acknowledged(redis)
    await submit(redis, ["b@amx.world.test"], "second")
    first, second = await received(sink, 2)
    assert first.peer != second.peer

    async def both_quit() -> bool:
        return sink.handler.quits == 2

    await wait_until(both_quit, what="QUIT after each message")


async def test_stopping_the_relay_quits_cached_connections(world, redis) -> None:
    sink = world.sink("127.0.5.5")
    relay = world.relay(YUBIN_RELAY_CONNECTION_CACHE_IDLE_S="30")
    await submit(redis, ["a@amx.world.test"], "first")
    await received(sink, 1)
    await all_acknowledged(redis)
    assert await asyncio.to_thread(relay.stop) == 0
    assert sink.handler.quits == 1
