"""Two relays share the stream and the retry set: every message is delivered exactly once."""

from tests.integration.relay.conftest import received, retry_count, submit, wait_until
from tests.integration.relay.sinks import SinkBehaviour

COUNT = 8


async def test_two_replicas_share_deliveries_and_retries(world, redis) -> None:
    # Every recipient is greylisted once, so every message goes through the retry set and is moved back
    # by one of two schedulers racing for it.
    recipients = [f"user{n}@later.world.test" for n in range(COUNT)]
    sink = world.sink(
        "127.0.5.6", SinkBehaviour(rcpt_replies={r: ["451 4.7.1 greylisted"] for r in recipients})
    )
    world.relay()
    world.relay()
    for n, recipient in enumerate(recipients):
        await submit(redis, [recipient], f"replica-{n}")

    got = await received(sink, COUNT)

    async def settled():
        return await retry_count(redis) == 0

    await wait_until(settled, what="the retry set to drain")
    assert sorted(r for message in got for r in message.rcpt_tos) == sorted(recipients)
    assert len(sink.messages) == COUNT  # nobody twice
