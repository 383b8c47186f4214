"""kill -9 after a remote's 250: the redelivered entry does not send the message to that remote again."""

import asyncio
import threading

from aiosmtpd.smtp import SMTP, Envelope, Session

from services.relay.sent_record import SENT
from shared.body_store import RedisBodyStore
from shared.models import TraceEvent
from shared.streams import OUTBOUND, RELAY_GROUP, TRACE
from tests.integration.relay.conftest import RelayWorld, received, submit, wait_until
from tests.integration.relay.sinks import Sink, SinkBehaviour, SinkHandler


class StallingQuit(SinkHandler):
    """Takes the message (250 to DATA), then never answers QUIT: the relay is killed while it waits."""

    def __init__(self) -> None:
        super().__init__(SinkBehaviour())
        self.quitting = threading.Event()

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.quitting.set()
        await asyncio.sleep(3600)
        return "221 Bye"


def stalling_quit_sink(world: RelayWorld, address: str) -> Sink:
    sink = Sink(address, world.port)
    sink.handler = sink.controller.handler = StallingQuit()
    world.sinks.append(sink)  # stopped by the fixture
    return sink.start()


async def test_sigkill_after_the_remote_accepted_does_not_send_again(world, redis) -> None:
    accepting = world.sink("127.0.5.5")  # amx.world.test: takes bob at once
    # later.world.test stalls in DATA on the first attempt: the attempt is still running when the relay is
    # killed, after amx's 250 and before the outcome is written.
    later = world.sink("127.0.5.6", SinkBehaviour(stall_data=1))
    relay = world.relay(YUBIN_BUS_CLAIM_IDLE_MS="500")
    envelope = await submit(redis, ["bob@amx.world.test", "carol@later.world.test"], "sent-once")

    assert await asyncio.to_thread(later.handler.stalled.wait, 20), "carol's DATA never started"

    async def recorded() -> bool:
        return await redis.hkeys(SENT.format(envelope.queue_id)) == [b"bob@amx.world.test"]

    await wait_until(recorded, what="bob's 250 to be recorded")
    relay.kill()  # after the remote's 250, before the attempt's outcome was written
    assert (await redis.xpending(OUTBOUND, RELAY_GROUP))["pending"] == 1

    world.relay(YUBIN_BUS_CLAIM_IDLE_MS="500")
    [got] = await received(later)
    assert got.rcpt_tos == ["carol@later.world.test"]

    async def finished() -> bool:
        pending = await redis.xpending(OUTBOUND, RELAY_GROUP)
        gone = await RedisBodyStore(redis).get(envelope.body_id) is None
        return gone and pending["pending"] == 0

    await wait_until(finished, what="the entry to be acknowledged and the body released")
    assert len(accepting.messages) == 1  # bob's copy was not sent a second time
    assert len(later.messages) == 1
    assert await redis.exists(SENT.format(envelope.queue_id)) == 0  # forgotten with the acknowledgement

    events = [TraceEvent.model_validate_json(f[b"data"]) for _, f in await redis.xrange(TRACE)]
    [skipped] = [e for e in events if e.event == "already-sent"]
    assert list(skipped.detail["recipients"]) == ["bob@amx.world.test"]
    # Both end up reported delivered, bob through the record of the first attempt.
    delivered = [e for e in events if e.event == "delivered"]
    reported = set().union(*(e.detail["recipients"] for e in delivered))
    assert reported == {"bob@amx.world.test", "carol@later.world.test"}


async def test_the_outcome_is_written_while_the_server_still_sits_on_quit(world, redis) -> None:
    """One domain, all its recipients accepted: no record is needed, and the QUIT goes on in the
    background, so a server slow to say goodbye does not hold the acknowledgement."""
    accepting = stalling_quit_sink(world, "127.0.5.5")
    world.relay(YUBIN_RELAY_CONNECTION_CACHE_IDLE_S="0", YUBIN_RELAY_COMMAND_TIMEOUT_S="60")
    envelope = await submit(redis, ["bob@amx.world.test", "dora@amx.world.test"], "quit-later")
    assert await asyncio.to_thread(accepting.handler.quitting.wait, 20), "the relay never sent QUIT"

    async def acknowledged() -> bool:
        return (await redis.xpending(OUTBOUND, RELAY_GROUP))["pending"] == 0

    await wait_until(acknowledged, what="the entry to be acknowledged while QUIT is unanswered")
    assert accepting.handler.quitting.is_set() and len(accepting.messages) == 1
    assert await redis.exists(SENT.format(envelope.queue_id)) == 0
    events = [TraceEvent.model_validate_json(f[b"data"]) for _, f in await redis.xrange(TRACE)]
    [delivered] = [e for e in events if e.event == "delivered"]
    assert set(delivered.detail["recipients"]) == {"bob@amx.world.test", "dora@amx.world.test"}
