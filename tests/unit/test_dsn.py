"""The DSN builder (RFC 3464) and bounce staging (never bounce a bounce; one MULTI with the caller)."""

import email
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage

from shared.body_store import RedisBodyStore, holder
from shared.bounce import stage_bounce
from shared.dsn import DELAYED_SUBJECT, FAILED_SUBJECT, build_dsn
from shared.models import Envelope, RecipientState, RecipientStatus, TraceEvent
from shared.redis_client import connect
from shared.streams import LOCAL_DELIVERY, OUTBOUND, TRACE

ORIGINAL = b"From: Alice <alice@alpha.test>\r\nTo: bob@far.test\r\nSubject: lunch\r\n\r\nsecret body\r\n"


def envelope(sender: str = "alice@alpha.test") -> Envelope:
    return Envelope(
        sender=sender,
        recipients=["bob@far.test", "carol@far.test"],
        body_id="b1",
        message_id="<m1@alpha.test>",
    )


def failed(recipient: str, **fields: str) -> RecipientStatus:
    return RecipientStatus(recipient=recipient, state=RecipientState.FAILED, **fields)


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]


def delivery_status(report: EmailMessage) -> list:
    part = next(p for p in report.iter_parts() if p.get_content_type() == "message/delivery-status")
    return part.get_payload()


def test_failed_dsn_structure_and_fields() -> None:
    statuses = [
        failed("bob@far.test", status="5.1.1", diagnostic="550 5.1.1 no such user", remote_mta="mx.far.test"),
        failed("carol@far.test", status="5.1.10", diagnostic="far.test publishes a null MX"),
    ]
    raw = build_dsn(envelope(), statuses, ORIGINAL, "mail.alpha.test")
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    report = parse(raw)
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    assert [p.get_content_type() for p in report.iter_parts()] == [
        "text/plain",
        "message/delivery-status",
        "text/rfc822-headers",
    ]
    assert report["From"].addresses[0].addr_spec == "MAILER-DAEMON@mail.alpha.test"
    assert report["From"].addresses[0].display_name == "Mail Delivery System"
    assert report["To"] == "alice@alpha.test"
    assert report["Subject"] == FAILED_SUBJECT
    assert report["Auto-Submitted"] == "auto-replied"
    assert report["Message-ID"].endswith("@mail.alpha.test>")
    assert report["Date"]

    per_message, bob, carol = delivery_status(report)
    assert per_message["Reporting-MTA"] == "dns; mail.alpha.test"
    assert per_message["Arrival-Date"]
    assert bob["Final-Recipient"] == "rfc822; bob@far.test"
    assert bob["Action"] == "failed"
    assert bob["Status"] == "5.1.1"
    assert bob["Remote-MTA"] == "dns; mx.far.test"
    assert bob["Diagnostic-Code"] == "smtp; 550 5.1.1 no such user"
    assert carol["Status"] == "5.1.10"
    assert carol["Remote-MTA"] is None
    assert carol["Diagnostic-Code"] == "X-Yubin; far.test publishes a null MX"

    text, _, headers = report.iter_parts()
    assert "bob@far.test" in text.get_content() and "550 5.1.1 no such user" in text.get_content()
    assert "Subject: lunch" in headers.get_content()
    assert b"secret body" not in raw  # headers only, never the body


def test_alias_recipients_report_the_address_the_sender_wrote() -> None:
    alias = envelope().model_copy(update={"original_recipients": {"bob@far.test": "team@alpha.test"}})
    statuses = [failed("bob@far.test", status="5.1.1"), failed("carol@far.test", status="5.1.1")]
    _, bob, carol = delivery_status(parse(build_dsn(alias, statuses, ORIGINAL, "mail.alpha.test")))
    assert bob["Original-Recipient"] == "rfc822; team@alpha.test"
    assert list(bob.keys())[:2] == ["Original-Recipient", "Final-Recipient"]  # RFC 3464 §2.3 order
    assert carol["Original-Recipient"] is None


def test_delayed_dsn_says_until_when() -> None:
    until = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    statuses = [
        RecipientStatus(
            recipient="bob@far.test",
            state=RecipientState.DEFERRED,
            status="4.4.1",
            diagnostic="connection refused",
        )
    ]
    report = parse(
        build_dsn(envelope(), statuses, ORIGINAL, "mail.alpha.test", delayed=True, will_retry_until=until)
    )
    assert report["Subject"] == DELAYED_SUBJECT
    _, bob = delivery_status(report)
    assert bob["Action"] == "delayed"
    assert bob["Status"] == "4.4.1"
    assert bob["Will-Retry-Until"] == "Tue, 01 Dec 2026 12:00:00 +0000"


def test_missing_original_leaves_out_the_headers_part() -> None:
    report = parse(build_dsn(envelope(), [failed("bob@far.test", status="5.0.0")], None, "mail.alpha.test"))
    assert [p.get_content_type() for p in report.iter_parts()] == ["text/plain", "message/delivery-status"]


def test_diagnostic_line_breaks_are_folded_into_one_field() -> None:
    statuses = [failed("bob@far.test", status="5.7.1", diagnostic="550-5.7.1 first\r\n550 5.7.1 second")]
    _, bob = delivery_status(parse(build_dsn(envelope(), statuses, ORIGINAL, "mail.alpha.test")))
    assert bob["Diagnostic-Code"] == "smtp; 550-5.7.1 first 550 5.7.1 second"


async def test_stage_bounce_routes_and_commits_with_the_caller(redis_url: str) -> None:
    redis = connect(redis_url)
    try:
        statuses = [failed("bob@far.test", status="5.1.1", diagnostic="550 5.1.1 no such user")]
        original = envelope()
        async with redis.pipeline(transaction=True) as pipe:
            local = stage_bounce(
                pipe, original, statuses, ORIGINAL, "mail.alpha.test", local_domains={"ALPHA.test"}
            )
            remote = stage_bounce(
                pipe,
                envelope("dave@elsewhere.test"),
                statuses,
                ORIGINAL,
                "mail.alpha.test",
                local_domains={"alpha.test"},
            )
            assert await redis.xlen(LOCAL_DELIVERY) == 0  # nothing lands before EXEC
            await pipe.execute()
        assert local is not None and remote is not None
        assert local.sender == "" and local.recipients == ["alice@alpha.test"]

        [(_, fields)] = await redis.xrange(LOCAL_DELIVERY)
        published = Envelope.model_validate_json(fields[b"data"])
        assert published == local
        body = await RedisBodyStore(redis).get(published.body_id)
        assert body is not None and published.size == len(body)
        assert parse(body)["Message-ID"] == published.message_id
        assert await RedisBodyStore(redis).holders(published.body_id) == {
            holder(LOCAL_DELIVERY, published.queue_id)
        }
        [(_, out_fields)] = await redis.xrange(OUTBOUND)
        assert Envelope.model_validate_json(out_fields[b"data"]).recipients == ["dave@elsewhere.test"]

        traces = [TraceEvent.model_validate_json(f[b"data"]) for _, f in await redis.xrange(TRACE)]
        assert [t.event for t in traces] == ["bounce", "dsn", "bounce", "dsn"]
        assert traces[0].queue_id == original.queue_id
        assert traces[0].detail["notice_queue_id"] == local.queue_id
        # The DSN's own event leads back to the message it reports on.
        link = traces[1]
        assert (link.queue_id, link.message_id) == (local.queue_id, local.message_id)
        assert link.detail["original_queue_id"] == original.queue_id
        assert link.detail["original_message_id"] == original.message_id
        assert link.detail["report"] == "failed"
    finally:
        await redis.aclose()


async def test_null_sender_is_never_bounced(redis_url: str) -> None:
    redis = connect(redis_url)
    try:
        async with redis.pipeline(transaction=True) as pipe:
            result = stage_bounce(
                pipe,
                envelope(""),
                [failed("bob@far.test", status="5.1.1")],
                ORIGINAL,
                "mail.alpha.test",
                local_domains={"alpha.test"},
            )
            await pipe.execute()
        assert result is None
        assert await redis.xlen(LOCAL_DELIVERY) == 0 and await redis.xlen(OUTBOUND) == 0
        assert await redis.dbsize() == 0
    finally:
        await redis.aclose()


def test_utf8_addresses_use_the_rfc_6533_address_type_and_the_dsn_stays_7bit() -> None:
    statuses = [
        failed("jörg@far.test", status="5.6.7", diagnostic="SMTPUTF8 is required"),
        failed("a+b=c@far.test", status="5.1.1", diagnostic="550 5.1.1 unknown"),
    ]
    original = "From: alice@alpha.test\r\nSubject: Grüße\r\n\r\nbody\r\n".encode()
    raw = build_dsn(envelope(), statuses, original, "mail.alpha.test")
    assert raw.isascii()  # to an ASCII sender: nothing that needs SMTPUTF8 or 8BITMIME
    assert b"=?utf-8?" not in raw  # no RFC 2047 encoded-word in an address field
    report = parse(raw)
    _, jorg, plain = delivery_status(report)
    assert jorg["Final-Recipient"] == r"utf-8; j\x{F6}rg@far.test"
    assert plain["Final-Recipient"] == "rfc822; a+b=c@far.test"  # ASCII stays rfc822, unescaped
    text, _, headers = report.iter_parts()
    assert "<jörg@far.test>" in text.get_content()
    assert headers.get_content_type() == "message/global-headers"  # RFC 6533 §6.3
    assert headers["Content-Transfer-Encoding"] == "quoted-printable"
    assert b"Subject: Gr=C3=BC=C3=9Fe" in raw  # "Grüße", quoted-printable


def test_xtext_escapes_what_is_not_a_qchar() -> None:
    from shared.dsn import utf8_addr_xtext

    assert utf8_addr_xtext("zoë+x=y\\z@例え.test") == r"zo\x{EB}\x{2B}x\x{3D}y\x{5C}z@\x{4F8B}\x{3048}.test"


def test_a_dsn_to_a_utf8_sender_is_an_internationalized_message() -> None:
    raw = build_dsn(
        envelope(sender="jörg@alpha.test"), [failed("bob@far.test", status="5.1.1")], None, "m.test"
    )
    assert "To: jörg@alpha.test\r\n".encode() in raw  # RFC 6532 raw UTF-8, not an encoded-word
