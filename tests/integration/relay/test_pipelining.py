"""PIPELINING (RFC 2920): to a server that offers it, the relay sends RSET (on a cached connection), MAIL,
every RCPT and DATA in one write, the message in a second one, and still reads every reply in order."""

from collections import Counter

from shared.streams import OUTBOUND, RELAY_GROUP
from tests.integration.relay.conftest import dsns, received, retry_count, submit, wait_until
from tests.integration.relay.sinks import SinkBehaviour


async def all_acknowledged(redis) -> None:
    async def done() -> bool:
        return (await redis.xpending(OUTBOUND, RELAY_GROUP))["pending"] == 0

    await wait_until(done, what="every entry to be acknowledged")


def commands_of(chunk: bytes) -> list[bytes]:
    return [line.split(b" ", 1)[0].split(b":", 1)[0] for line in chunk.split(b"\r\n") if line]


async def test_a_transaction_goes_in_two_writes_over_tls_and_a_cached_connection_starts_with_rset(
    world, redis
) -> None:
    sink = world.sink("127.0.5.11", SinkBehaviour(pipelining=True), tls=True)
    world.relay(YUBIN_RELAY_CONNECTION_CACHE_IDLE_S="30")
    await submit(redis, ["a@tls.world.test", "b@tls.world.test"], "first")
    await received(sink, 1)
    await all_acknowledged(redis)  # its connection is back in the cache
    await submit(redis, ["c@tls.world.test"], "second")
    first, second = await received(sink, 2)

    assert first.tls and second.tls and first.peer == second.peer
    assert first.rcpt_tos == ["a@tls.world.test", "b@tls.world.test"]
    assert second.rcpt_tos == ["c@tls.world.test"]
    groups = [commands_of(c) for c in sink.chunks if b"DATA\r\n" in c]
    assert groups == [[b"MAIL", b"RCPT", b"RCPT", b"DATA"], [b"RSET", b"MAIL", b"RCPT", b"DATA"]]
    # Each message arrived whole in one write of its own, dot-stuffed and ended by the lone dot.
    bodies = [c for c in sink.chunks if c.endswith(b"\r\n.\r\n")]
    assert len(bodies) == 2 and all(b"Subject: " in body for body in bodies)


async def test_refused_recipients_in_a_pipelined_group_are_told_apart(world, redis) -> None:
    sink = world.sink(
        "127.0.5.5",
        SinkBehaviour(pipelining=True, rcpt_replies={"no@amx.world.test": ["550 5.1.1 no such user"]}),
    )
    world.relay()
    await submit(redis, ["no@amx.world.test", "yes@amx.world.test"], "mixed")

    [got] = await received(sink)
    assert got.rcpt_tos == ["yes@amx.world.test"]
    [dsn] = await dsns(redis, 1)
    assert list(dsn.recipients) == ["no@amx.world.test"]
    assert dsn.recipients["no@amx.world.test"]["Status"] == "5.1.1"
    await all_acknowledged(redis)
    assert await retry_count(redis) == 0


async def test_all_recipients_refused_sends_no_message_and_the_connection_goes_on(world, redis) -> None:
    refusals = {address: ["550 5.1.1 no such user"] for address in ("x@amx.world.test", "y@amx.world.test")}
    sink = world.sink("127.0.5.5", SinkBehaviour(pipelining=True, rcpt_replies=refusals))
    world.relay(YUBIN_RELAY_CONNECTION_CACHE_IDLE_S="30")
    await submit(redis, ["x@amx.world.test", "y@amx.world.test"], "refused")
    [dsn] = await dsns(redis, 1)
    assert sorted(dsn.recipients) == ["x@amx.world.test", "y@amx.world.test"]
    await all_acknowledged(redis)
    await submit(redis, ["z@amx.world.test"], "after")  # the same connection, its DATA refusal read

    [got] = await received(sink)
    assert got.rcpt_tos == ["z@amx.world.test"]
    assert Counter(m.peer for m in sink.messages) == Counter({got.peer: 1})
    assert len({c for c in sink.chunks if c.startswith(b"RSET\r\n")}) == 1
