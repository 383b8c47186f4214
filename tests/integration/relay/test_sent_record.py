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
    accepting = stalling_quit_sink(world, "127.0.5.5")  # amx.world.test: takes bob, then hangs in QUIT
    # later.world.test defers carol on the first attempt, so the redelivery still has work to do.
    later = world.sink(
        "127.0.5.6", SinkBehaviour(rcpt_replies={"carol@later.world.test": ["451 4.3.0 busy"]})
    )
    # No connection reuse: the relay QUITs right after the 250, so the sink can hold it there.
    relay = world.relay(YUBIN_BUS_CLAIM_IDLE_MS="500", YUBIN_RELAY_CONNECTION_CACHE_IDLE_S="0")
    envelope = await submit(redis, ["bob@amx.world.test", "carol@later.world.test"], "sent-once")

    assert await asyncio.to_thread(accepting.handler.quitting.wait, 20), "the relay never sent QUIT"
    assert await redis.hkeys(SENT.format(envelope.queue_id)) == [b"bob@amx.world.test"]
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
    # Whether carol's 451 came before the kill or after the restart is up to the scheduler: either way
    # both end up reported delivered, bob through the record of the first attempt.
    delivered = [e for e in events if e.event == "delivered"]
    reported = set().union(*(e.detail["recipients"] for e in delivered))
    assert reported == {"bob@amx.world.test", "carol@later.world.test"}
