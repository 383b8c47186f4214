"""Where the relay sends mail: MX preference, equal preferences, implicit MX; what the remote gets."""

import email
from email import policy

from shared.body_store import RedisBodyStore
from shared.models import TraceEvent
from shared.streams import TRACE
from tests.integration.relay.conftest import RELAY_HOSTNAME, SENDER, received, submit, wait_until


async def test_first_mx_down_second_gets_it(world, redis) -> None:
    second = world.sink("127.0.5.2")
    world.relay()
    envelope = await submit(redis, ["bob@two-mx.world.test"], "two-mx")

    [got] = await received(second)
    assert got.mail_from == SENDER
    assert got.rcpt_tos == ["bob@two-mx.world.test"]
    assert got.helo == RELAY_HOSTNAME
    assert f"SIZE={envelope.size}" in got.mail_options
    parsed = email.message_from_bytes(got.content, policy=policy.default)
    assert parsed["Subject"] == "two-mx"
    assert parsed.get_all("Received") is None  # the relay adds no Received header of its own
    assert b"\r\n.dot line\r\n" in got.content  # dot-stuffing undone by the receiver: transparent

    async def body_released():
        return await RedisBodyStore(redis).get(envelope.body_id) is None

    await wait_until(body_released, what="the body to be released")

    # The trace tells the story: the MX answer, each host and address tried, and the replies.
    events = [TraceEvent.model_validate_json(fields[b"data"]) for _, fields in await redis.xrange(TRACE)]
    mine = [e for e in events if e.queue_id == envelope.queue_id and e.service == "relay"]
    assert [e.event for e in mine] == ["mx-lookup", "attempt", "attempt", "delivered"]
    lookup, first, second, _ = mine
    assert [(h["preference"], h["host"]) for h in lookup.detail["answer"]] == [
        (10, "mx-down.world.test"),
        (20, "mx-second.world.test"),
    ]
    assert (first.detail["address"], second.detail["address"]) == ("127.0.5.1", "127.0.5.2")
    assert "Connect call failed" in first.detail["reply"]
    assert second.detail["reply"] == "250 2.0.0 Ok: queued"
    assert all(e.message_id == "<two-mx@alpha.test>" for e in mine)


async def test_equal_preferences_spread_over_both(world, redis) -> None:
    a, b = world.sink("127.0.5.3"), world.sink("127.0.5.4")
    world.relay()
    for n in range(16):
        await submit(redis, [f"user{n}@equal.world.test"], f"equal-{n}")

    async def all_delivered():
        return len(a.messages) + len(b.messages) == 16

    await wait_until(all_delivered, what="16 deliveries")
    # Each message picks its own order; all 16 landing on one host has probability 2 * 2**-16.
    assert a.messages and b.messages


async def test_no_mx_falls_back_to_the_address(world, redis) -> None:
    sink = world.sink("127.0.5.5")
    world.relay()
    await submit(redis, ["carol@amx.world.test"], "implicit")
    [got] = await received(sink)
    assert got.rcpt_tos == ["carol@amx.world.test"]


async def test_one_connection_per_domain(world, redis) -> None:
    sink, other = world.sink("127.0.5.5"), world.sink("127.0.5.2")
    world.relay()
    await submit(redis, ["a@amx.world.test", "b@amx.world.test", "c@two-mx.world.test"], "grouped")
    [got] = await received(sink)
    assert got.rcpt_tos == ["a@amx.world.test", "b@amx.world.test"]
    [got_other] = await received(other)
    assert got_other.rcpt_tos == ["c@two-mx.world.test"]


async def test_starttls_when_offered(world, redis) -> None:
    sink = world.sink("127.0.5.11", tls=True)
    world.relay()
    await submit(redis, ["dave@tls.world.test"], "tls")
    [got] = await received(sink)
    assert got.tls
