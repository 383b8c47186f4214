"""The relay never crashes on, and never silently downgrades, what a server does not offer.

SMTPUTF8 (RFC 6531 §3.4): a recipient that needs it, to a server without it, bounces alone with 5.6.7; a
sender or header that needs it bounces the message. 8BITMIME (RFC 6152): an 8-bit message for a server
without it bounces with 5.6.3. TLS with verification on: an untrusted certificate defers (4.7.5), never a
plain-text retry.
"""

from shared.models import TraceEvent
from shared.streams import DEAD_LETTER, OUTBOUND, RELAY_GROUP, TRACE
from tests.integration.relay.conftest import SENDER, dsns, received, retry_count, submit, wait_until
from tests.integration.relay.sinks import SinkBehaviour

ASCII_HEADERS = (
    b"From: alice@alpha.test\r\nTo: undisclosed-recipients:;\r\nSubject: {subject}\r\n"
    b"Message-ID: <{subject}@alpha.test>\r\n\r\nHello.\r\n"
)


def ascii_message(subject: str) -> bytes:
    return ASCII_HEADERS.replace(b"{subject}", subject.encode())


async def nothing_left(redis) -> bool:
    pending = await redis.xpending(OUTBOUND, RELAY_GROUP)
    return pending["pending"] == 0 and await retry_count(redis) == 0


async def test_utf8_recipient_bounces_alone_when_the_server_lacks_smtputf8(world, redis) -> None:
    sink = world.sink("127.0.5.12")  # aiosmtpd without SMTPUTF8
    world.relay()
    await submit(redis, ["jörg@plain.world.test", "ann@plain.world.test"], body=ascii_message("eai"))

    [got] = await received(sink)
    assert got.rcpt_tos == ["ann@plain.world.test"]
    assert "SMTPUTF8" not in got.mail_options
    [dsn] = await dsns(redis, 1)
    assert dsn.envelope.recipients == [SENDER]
    assert list(dsn.recipients) == [r"j\x{F6}rg@plain.world.test"]  # RFC 6533 utf-8-addr-xtext
    block = dsn.recipients[r"j\x{F6}rg@plain.world.test"]
    assert block["Final-Recipient"] == r"utf-8; j\x{F6}rg@plain.world.test"
    assert (block["Action"], block["Status"]) == ("failed", "5.6.7")
    assert "SMTPUTF8 is required, but was not offered by host mx-plain.world.test" in block["Diagnostic-Code"]
    await wait_until(lambda: nothing_left(redis), what="the entry to be finished")
    assert await redis.xlen(DEAD_LETTER) == 0
    assert [address for address, _ in sink.handler.rcpt_log] == ["ann@plain.world.test"]


async def test_an_idn_domain_goes_as_its_a_label_without_smtputf8(world, redis) -> None:
    sink = world.sink("127.0.5.12")
    world.relay()
    await submit(redis, ["ann@bücher.world.test"], body=ascii_message("idn"))
    [got] = await received(sink)
    assert got.rcpt_tos == ["ann@xn--bcher-kva.world.test"]


async def test_utf8_sender_or_header_bounces_the_message_without_smtputf8(world, redis) -> None:
    sink = world.sink("127.0.5.12")
    world.relay()
    await submit(
        redis, ["ann@plain.world.test"], "utf8-sender", sender="jörg@alpha.test", body=ascii_message("s")
    )
    utf8_header = "From: alice@alpha.test\r\nSubject: Grüße\r\n\r\nHello.\r\n".encode()
    await submit(redis, ["bob@plain.world.test"], "utf8-header", body=utf8_header)

    found = {dsn.envelope.recipients[0]: dsn for dsn in await dsns(redis, 2)}
    block = found["jörg@alpha.test"].recipients["ann@plain.world.test"]
    assert block["Status"] == "5.6.7" and "non-ASCII sender" in block["Diagnostic-Code"]
    assert found["jörg@alpha.test"].report["To"] == "jörg@alpha.test"  # RFC 6532, not an encoded-word
    block = found[SENDER].recipients["bob@plain.world.test"]
    assert block["Status"] == "5.6.7" and "non-ASCII message header" in block["Diagnostic-Code"]
    await wait_until(lambda: nothing_left(redis), what="the entries to be finished")
    assert sink.handler.transactions == {}  # not even MAIL FROM
    assert await redis.xlen(DEAD_LETTER) == 0


async def test_utf8_headers_ask_for_smtputf8_when_offered(world, redis) -> None:
    # ASCII envelope, RFC 6532 header: the server must be told (SMTPUTF8), not just handed raw UTF-8.
    sink = world.sink("127.0.5.14", SinkBehaviour(smtputf8=True))
    world.relay()
    body = "From: alice@alpha.test\r\nSubject: Grüße\r\n\r\nこんにちは\r\n".encode()
    await submit(redis, ["zoe@intl.world.test"], body=body)
    [got] = await received(sink)
    assert got.rcpt_tos == ["zoe@intl.world.test"]
    assert "SMTPUTF8" in got.mail_options and "BODY=8BITMIME" in got.mail_options
    assert got.content.startswith("From: alice@alpha.test\r\nSubject: Grüße".encode())


async def test_8bit_body_bounces_5_6_3_without_8bitmime(world, redis) -> None:
    sink = world.sink("127.0.5.13", SinkBehaviour(eight_bit_mime=False))
    world.relay()
    body = (
        b"From: alice@alpha.test\r\nTo: bob@old.world.test\r\nSubject: 8bit\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + "Grüße\r\n".encode()
    )
    await submit(redis, ["bob@old.world.test"], "8bit", body=body)
    [dsn] = await dsns(redis, 1)
    block = dsn.recipients["bob@old.world.test"]
    assert (block["Action"], block["Status"]) == ("failed", "5.6.3")
    assert "does not offer 8BITMIME" in block["Diagnostic-Code"]
    await wait_until(lambda: nothing_left(redis), what="the entry to be finished")
    assert sink.messages == [] and sink.handler.transactions == {}


async def test_untrusted_certificate_defers_and_nothing_goes_in_plain_text(world, redis) -> None:
    sink = world.sink("127.0.5.11", tls=True)  # a self-signed certificate nobody trusts
    world.relay(YUBIN_RELAY_TLS_VERIFY="true", YUBIN_RELAY_RETRY_SCHEDULE_S="60")
    envelope = await submit(redis, ["dave@tls.world.test"], "untrusted")

    async def deferred():
        events = [TraceEvent.model_validate_json(f[b"data"]) for _, f in await redis.xrange(TRACE)]
        return [e for e in events if e.event == "deferred" and e.queue_id == envelope.queue_id]

    [event] = await wait_until(deferred, what="the deferral")
    outcome = event.detail["recipients"]["dave@tls.world.test"]
    assert outcome.startswith("4.7.5 TLS with mx-tls.world.test failed")
    assert "CERTIFICATE_VERIFY_FAILED" in outcome
    assert await retry_count(redis) == 1
    assert sink.messages == [] and sink.handler.transactions == {}  # no MAIL FROM, in plain text or not
    assert await redis.xlen(DEAD_LETTER) == 0


async def test_verification_on_and_no_starttls_defers_4_7_4(world, redis) -> None:
    sink = world.sink("127.0.5.12")  # offers no STARTTLS
    world.relay(YUBIN_RELAY_TLS_VERIFY="true", YUBIN_RELAY_RETRY_SCHEDULE_S="60")
    envelope = await submit(redis, ["ann@plain.world.test"], "no-starttls")

    async def deferred():
        events = [TraceEvent.model_validate_json(f[b"data"]) for _, f in await redis.xrange(TRACE)]
        return [e for e in events if e.event == "deferred" and e.queue_id == envelope.queue_id]

    [event] = await wait_until(deferred, what="the deferral")
    assert event.detail["recipients"]["ann@plain.world.test"].startswith("4.7.4 TLS is required")
    assert sink.handler.transactions == {}
