from datetime import UTC, datetime

from services.submission import headers
from services.submission.headers import ClientInfo

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def client(**changes: object) -> ClientInfo:
    base = {
        "helo": "laptop.example",
        "address": "192.0.2.7",
        "extended": True,
        "tls_version": None,
        "tls_cipher": None,
        "authenticated": False,
    }
    return ClientInfo(**{**base, **changes})  # type: ignore[arg-type]


def test_with_keywords_rfc_3848() -> None:
    assert headers.with_keyword(client(extended=False)) == "SMTP"
    assert headers.with_keyword(client()) == "ESMTP"
    assert headers.with_keyword(client(tls_version="TLSv1.3")) == "ESMTPS"
    assert headers.with_keyword(client(authenticated=True)) == "ESMTPA"
    assert headers.with_keyword(client(tls_version="TLSv1.3", authenticated=True)) == "ESMTPSA"


def test_received_header() -> None:
    field = headers.received_header(
        client(tls_version="TLSv1.3", tls_cipher="TLS_AES_256_GCM_SHA384", authenticated=True),
        by_host="mail.alpha.test",
        role="submission",
        queue_id="ABC123",
        now=NOW,
    )
    assert field == (
        b"Received: from laptop.example ([192.0.2.7])\r\n"
        b"\tby mail.alpha.test (Yubin submission)\r\n"
        b"\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)\r\n"
        b"\twith ESMTPSA id ABC123;\r\n"
        b"\tThu, 26 Nov 2026 12:00:00 +0000\r\n"
    )


def test_helo_cannot_forge_header_structure() -> None:
    assert headers.safe_helo("evil (by trusted.example); x") == "evil??by?trusted.example???x"
    assert headers.safe_helo(None) == "unknown"
    assert len(headers.safe_helo("a" * 1000)) == 255


def test_counting_received_looks_at_the_header_section_only() -> None:
    message = b"Received: one\r\nReceived: two\r\n\tfolded\r\nSubject: x\r\n\r\nReceived: in the body\r\n"
    parsed = headers.parse_headers(message)
    assert headers.count_received(parsed) == 2
    assert headers.count_received(headers.parse_headers(b"\r\nReceived: body only\r\n")) == 0


def test_submission_headers_only_when_missing() -> None:
    added, new_id = headers.submission_headers(
        headers.parse_headers(b"Subject: x\r\n\r\n"), hostname="mail.alpha.test", now=NOW
    )
    assert added.startswith(b"Date: Thu, 26 Nov 2026 12:00:00 +0000\r\nMessage-ID: <")
    assert new_id is not None and new_id.endswith("@mail.alpha.test>")
    present = headers.parse_headers(b"Date: Thu, 1 Jan 2026 00:00:00 +0000\r\nMessage-ID: <a@b>\r\n\r\n")
    assert headers.submission_headers(present, hostname="mail.alpha.test") == (b"", None)
    assert headers.message_id_of(present) == "<a@b>"


def test_header_section_is_capped() -> None:
    huge = b"X-Filler: " + b"f" * 100 + b"\r\n"
    content = huge * 20_000  # ~2 MiB of header fields and no body
    section = headers.header_section(content)
    assert len(section) <= headers.MAX_HEADER_SECTION and section.endswith(b"\r\n")
    assert headers.header_section(b"A: b\r\n\r\nbody") == b"A: b\r\n"
    assert headers.header_section(b"A: b\r\n") == b"A: b\r\n"


def test_message_id_is_one_clean_line() -> None:
    parsed = headers.parse_headers(b"Message-ID:\r\n <a\x00b@c>\r\n\r\n")
    assert headers.message_id_of(parsed) == "<a b@c>"


EQUIVALENCE_CASES = [
    b"Subject: x\r\n\r\nbody\r\n",
    b"Received: a\r\nReceived: b\r\n\tc\r\nMessage-ID:\r\n <x@y>\r\nDate: now\r\n\r\nReceived: no\r\n",
    b"Message-ID: <first@x>\r\nmessage-id: <second@x>\r\nDATE: d\r\n\r\n",
    b"Received: a\r\nthis line is not a field\r\nReceived: b\r\nMessage-ID: <late@x>\r\n\r\n",
    b"From someone Thu Jan  1 00:00:00 2026\r\nReceived: a\r\n\r\n",
    b" leading continuation\r\nReceived: a\r\n\r\n",
    b"Received : obsolete space before the colon\r\nReceived: a\r\n\r\n",
    b"Message-ID:\r\nDate:\r\n\r\n",
    b"\r\nReceived: body only\r\n",
    b"Received: no empty line at all\r\n",
]


def test_the_bytes_scan_agrees_with_the_email_parser() -> None:
    from email.parser import BytesHeaderParser

    for content in EQUIVALENCE_CASES:
        reference = BytesHeaderParser().parsebytes(headers.header_section(content))
        ours = headers.parse_headers(content)
        assert headers.count_received(ours) == len(reference.get_all("Received", [])), content
        assert (ours.message_id is None) == (reference.get("Message-ID") is None), content
        assert ours.has_date == (reference.get("Date") is not None), content
        if ours.message_id is not None:
            expected = " ".join(
                str(reference.get("Message-ID"))
                .encode("utf-8", "surrogateescape")
                .decode("utf-8", "replace")
                .split()
            )
            assert headers.message_id_of(ours) == (expected[:998] or None), content


def test_a_utf8_message_id_is_kept_and_invalid_bytes_replaced() -> None:
    # (The email parser turned every non-ASCII byte into U+FFFD; an SMTPUTF8 Message-ID now survives.)
    parsed = headers.parse_headers(b"Message-ID: <a\xc3\xa9\xff@x>\r\n\r\n")
    assert headers.message_id_of(parsed) == "<a\u00e9\ufffd@x>"


def test_received_header_names_an_ipv6_client_with_the_rfc_5321_address_literal() -> None:
    """RFC 5321 §4.1.3: an IPv6 address literal is tagged `IPv6:`; IPv4-mapped clients are IPv4."""
    field = headers.received_header(
        client(address="2001:DB8:0:0::7"), by_host="mx.alpha.test", role="mx", queue_id="Q", now=NOW
    )
    assert field.startswith(b"Received: from laptop.example ([IPv6:2001:db8::7])\r\n")
    mapped = headers.received_header(
        client(address="::ffff:192.0.2.7"), by_host="mx.alpha.test", role="mx", queue_id="Q", now=NOW
    )
    assert mapped.startswith(b"Received: from laptop.example ([192.0.2.7])\r\n")
    unknown = headers.received_header(client(address=None), by_host="h", role="mx", queue_id="Q", now=NOW)
    assert unknown.startswith(b"Received: from laptop.example ([unknown])\r\n")
