"""Temporary failures: retried from the Redis retry set (across relay restarts), delayed DSN, expiry."""

from datetime import timedelta
from email.utils import parsedate_to_datetime

from services.relay.retry import relay_retry_queue
from shared.body_store import RedisBodyStore
from shared.dsn import DELAYED_SUBJECT, FAILED_SUBJECT
from tests.integration.relay.conftest import dsns, local_notices, received, retry_count, submit, wait_until
from tests.integration.relay.sinks import SinkBehaviour


async def test_4xx_then_delivered_after_a_restart(world, redis) -> None:
    sink = world.sink(
        "127.0.5.6", SinkBehaviour(rcpt_replies={"bob@later.world.test": ["451 4.7.1 greylisted, try later"]})
    )
    # A long wait before the retry, so the restart surely happens while the envelope sits in the set.
    relay = world.relay(YUBIN_RELAY_RETRY_SCHEDULE_S="2")
    envelope = await submit(redis, ["bob@later.world.test"], "greylisted")

    async def deferred():
        return await retry_count(redis) == 1

    await wait_until(deferred, what="the envelope in the retry set")
    assert relay.stop() == 0  # graceful SIGTERM exits 0
    [(waiting, _due)] = await relay_retry_queue(redis).envelopes()
    assert waiting.queue_id == envelope.queue_id and waiting.attempts == 1
    assert waiting.recipients == ["bob@later.world.test"]
    assert await RedisBodyStore(redis).get(envelope.body_id) is not None  # held while waiting
    assert sink.messages == []

    world.relay(YUBIN_RELAY_RETRY_SCHEDULE_S="2")
    [got] = await received(sink)
    assert got.rcpt_tos == ["bob@later.world.test"]
    assert [reply for _, reply in sink.handler.rcpt_log] == [
        "451 4.7.1 greylisted, try later",
        "250 2.1.5 Ok",
    ]
    assert await retry_count(redis) == 0
    assert await local_notices(redis) == []  # no DSN for mail that got through

    async def released():
        return await RedisBodyStore(redis).get(envelope.body_id) is None

    await wait_until(released, what="the body to be released")


async def test_delay_notice_then_expiry_bounce(world, redis) -> None:
    # down.world.test's MX is 127.0.5.1, where nothing listens: every attempt fails temporarily.
    world.relay(
        YUBIN_RELAY_RETRY_SCHEDULE_S="0.2",
        YUBIN_RELAY_DELAY_WARNING_S="0.5",
        YUBIN_RELAY_MAX_QUEUE_LIFETIME_S="2",
    )
    envelope = await submit(redis, ["bob@down.world.test"], "expiring")
    delayed, failed = await dsns(redis, 2)

    assert delayed.report["Subject"] == DELAYED_SUBJECT
    block = delayed.recipients["bob@down.world.test"]
    assert block["Action"] == "delayed"
    assert block["Status"] == "4.4.1"
    assert "Connect call failed" in block["Diagnostic-Code"]
    expected_until = envelope.received_at + timedelta(seconds=2)
    assert parsedate_to_datetime(block["Will-Retry-Until"]) == expected_until.replace(microsecond=0)

    assert failed.report["Subject"] == FAILED_SUBJECT
    block = failed.recipients["bob@down.world.test"]
    assert block["Action"] == "failed"
    assert block["Status"] == "4.4.1"  # the last temporary status (RFC 3463 X.4.7), as delivery reports it
    assert "delivery time expired" in block["Diagnostic-Code"]
    assert "Connect call failed" in block["Diagnostic-Code"]

    async def finished():
        gone = await RedisBodyStore(redis).get(envelope.body_id) is None
        return gone and await retry_count(redis) == 0

    await wait_until(finished, what="the expired message to be gone")
    assert len(await local_notices(redis)) == 2  # exactly one delayed notice and one bounce
