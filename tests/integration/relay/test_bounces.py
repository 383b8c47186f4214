"""Permanent failures: one DSN per message to the sender, covering exactly the failed recipients."""

import json

from shared.body_store import RedisBodyStore
from shared.dsn import FAILED_SUBJECT
from shared.streams import DEAD_LETTER, LOCAL_DELIVERY, OUTBOUND, RELAY_GROUP
from tests.integration.relay.conftest import (
    RELAY_HOSTNAME,
    SENDER,
    dsns,
    parse_dsn,
    received,
    retry_count,
    submit,
    wait_until,
)
from tests.integration.relay.sinks import SinkBehaviour


async def test_null_mx_bounces_at_once(world, redis) -> None:
    world.relay()
    envelope = await submit(redis, ["bob@nullmx.world.test"], "nullmx")
    [dsn] = await dsns(redis, 1)

    assert dsn.envelope.sender == "" and dsn.envelope.recipients == [SENDER]
    assert dsn.report["To"] == SENDER
    assert dsn.report["Subject"] == FAILED_SUBJECT
    assert dsn.report["Auto-Submitted"] == "auto-replied"
    assert dsn.per_message["Reporting-MTA"] == f"dns; {RELAY_HOSTNAME}"
    block = dsn.recipients["bob@nullmx.world.test"]
    assert block["Action"] == "failed"
    assert block["Status"] == "5.1.10"
    assert "null MX" in block["Diagnostic-Code"]
    headers = [p for p in dsn.report.iter_parts() if p.get_content_type() == "text/rfc822-headers"]
    assert "Subject: nullmx" in headers[0].get_content()

    async def released():
        return await RedisBodyStore(redis).get(envelope.body_id) is None

    await wait_until(released, what="the original body to be released")


async def test_nxdomain_bounces(world, redis) -> None:
    world.relay()
    await submit(redis, ["bob@gone.world.test"], "nxdomain")
    [dsn] = await dsns(redis, 1)
    block = dsn.recipients["bob@gone.world.test"]
    assert (block["Action"], block["Status"]) == ("failed", "5.1.2")
    assert "NXDOMAIN" in block["Diagnostic-Code"]


async def test_one_rejected_one_delivered(world, redis) -> None:
    sink = world.sink(
        "127.0.5.7", SinkBehaviour(rcpt_replies={"nobody@picky.world.test": ["550 5.1.1 no such user"]})
    )
    world.relay()
    await submit(redis, ["nobody@picky.world.test", "somebody@picky.world.test"], "picky")

    [got] = await received(sink)
    assert got.rcpt_tos == ["somebody@picky.world.test"]
    [dsn] = await dsns(redis, 1)
    assert list(dsn.recipients) == ["nobody@picky.world.test"]
    block = dsn.recipients["nobody@picky.world.test"]
    assert block["Action"] == "failed"
    assert block["Status"] == "5.1.1"
    assert block["Remote-MTA"] == "dns; mx-picky.world.test"
    assert block["Diagnostic-Code"] == "smtp; 550 5.1.1 no such user"
    assert await retry_count(redis) == 0


async def test_mx_pointing_at_ourselves_bounces(world, redis) -> None:
    world.relay()
    await submit(redis, ["bob@loop.world.test"], "loop")
    [dsn] = await dsns(redis, 1)
    block = dsn.recipients["bob@loop.world.test"]
    assert block["Status"] == "5.4.6"
    assert "loops back to myself" in block["Diagnostic-Code"]


async def test_a_bounce_is_never_bounced(world, redis) -> None:
    world.relay()
    envelope = await submit(redis, ["bob@nullmx.world.test"], "bounce-of-bounce", sender="")

    async def finished():
        pending = await redis.xpending(OUTBOUND, RELAY_GROUP)
        gone = await RedisBodyStore(redis).get(envelope.body_id) is None
        return gone and pending["pending"] == 0

    await wait_until(finished, what="the bounce to be dropped")
    # A DSN would have been staged in the same transaction as the release: it would be there by now.
    assert await redis.xlen(LOCAL_DELIVERY) == 0
    assert await redis.xlen(OUTBOUND) == 0  # the submitted message itself, done (and deleted); no DSN


async def test_line_breaks_in_an_envelope_never_reach_smtp(world, redis) -> None:
    # Written around the Envelope model (which refuses it) as a buggy or hostile producer could.
    sink = world.sink("127.0.5.5")
    world.relay()
    envelope = await submit(redis, ["carol@amx.world.test"], "smuggled")
    raw = envelope.model_dump(mode="json")
    raw["recipients"] = ["carol@amx.world.test>\r\nRCPT TO:<mallory@amx.world.test"]
    await redis.xadd(OUTBOUND, {"type": "Envelope", "data": json.dumps(raw)})

    async def dead_lettered():
        return await redis.xlen(DEAD_LETTER) == 1

    await wait_until(dead_lettered, what="the hostile entry on the dead-letter stream")
    [got] = await received(sink)  # the genuine one, and only that
    assert got.rcpt_tos == ["carol@amx.world.test"]
    assert [address for address, _ in sink.handler.rcpt_log] == ["carol@amx.world.test"]


async def test_bounce_to_a_remote_sender_goes_out_from_the_null_sender(world, redis) -> None:
    senders_mx = world.sink("127.0.5.5")
    world.relay()
    await submit(redis, ["bob@nullmx.world.test"], "remote-sender", sender="carol@amx.world.test")

    [got] = await received(senders_mx)
    assert got.mail_from == "<>"  # MAIL FROM:<>, as aiosmtpd records it
    assert got.rcpt_tos == ["carol@amx.world.test"]
    dsn = parse_dsn(None, got.content)
    assert dsn.recipients["bob@nullmx.world.test"]["Status"] == "5.1.10"
    assert await redis.xlen(LOCAL_DELIVERY) == 0
