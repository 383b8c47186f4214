"""SMTP smuggling (CVE-2023-51764 and relatives): a non-standard end of data must never end the data.

Each attempt sends, in one DATA, a first message, a fake end-of-data, and a complete second transaction
that a lenient server would take as a new message. Here the whole thing is one message with a bare CR or
LF in it: refused, nothing stored, and the "smuggled" commands never run.
"""

import pytest
import redis

from tests.integration.submission.site import DOMAIN, RawSmtp, Reception, Site, all_envelopes, body_of

VICTIM = f"victim@{DOMAIN}"

SMUGGLED = (
    b"MAIL FROM:<ceo@alpha.test>\r\n"
    b"RCPT TO:<victim@alpha.test>\r\n"
    b"DATA\r\n"
    b"From: ceo@alpha.test\r\nSubject: smuggled\r\n\r\nPay the invoice.\r\n"
)


@pytest.fixture(scope="module")
def mx(site: Site) -> Reception:
    site.add_user(VICTIM)
    return site.start("mx")


def open_transaction(client: RawSmtp) -> None:
    assert client.reply().startswith("220")
    client.command("EHLO attacker.example")
    assert client.command("MAIL FROM:<attacker@remote.example>").startswith("250")
    assert client.command(f"RCPT TO:<{VICTIM}>").startswith("250")
    assert client.command("DATA").startswith("354")


@pytest.mark.parametrize(
    ("fake_end", "refusal"),
    [
        (b"\n.\n", "550 5.5.2 Error: bare <LF> received"),
        (b"\r\n.\n", "550 5.5.2 Error: bare <LF> received"),
        (b"\n.\r\n", "550 5.5.2 Error: bare <LF> received"),
        (b"\r.\r", "550 5.5.2 Error: bare <CR> received"),
        (b"\r\n.\r", "550 5.5.2 Error: bare <CR> received"),
        (b"\r.\r\n", "550 5.5.2 Error: bare <CR> received"),
        (b"\r\n\x00.\r\n", None),  # not an end either: a NUL line is just content
    ],
    ids=["LF.LF", "CRLF.LF", "LF.CRLF", "CR.CR", "CRLF.CR", "CR.CRLF", "CRLF-NUL.CRLF"],
)
def test_smuggled_message_never_lands(
    mx: Reception, clean_queues: redis.Redis, fake_end: bytes, refusal: str | None
) -> None:
    with RawSmtp(mx.host, mx.port) as client:
        open_transaction(client)
        client.send(b"From: attacker@remote.example\r\nSubject: first\r\n\r\nfirst" + fake_end + SMUGGLED)
        client.send(b"\r\n.\r\n")  # the real end of data
        reply = client.reply()
        if refusal is not None:
            assert reply == refusal
        else:
            assert reply.startswith("250 2.0.0 Ok: queued as ")
        assert client.command("QUIT").startswith("221 2.0.0")  # nothing else was answered in between

    landed = all_envelopes(clean_queues)
    assert landed["outbound"] == []
    if refusal is not None:
        assert landed["local"] == [] and landed["trace"] == []
        assert clean_queues.keys("yubin:body:*") == []
    else:
        # Exactly one message, from the attacker, with the "smuggled" text as its content.
        [envelope] = landed["local"]
        assert envelope["sender"] == "attacker@remote.example"
        assert b"Subject: smuggled" in body_of(clean_queues, envelope)


def test_dot_stuffing_round_trip(mx: Reception, clean_queues: redis.Redis) -> None:
    """A line starting with a dot is sent doubled (RFC 5321 §4.5.2) and stored with one dot."""
    with RawSmtp(mx.host, mx.port) as client:
        open_transaction(client)
        client.send(b"Subject: dots\r\n\r\n..\r\n...leading dots\r\n.\r\n")
        assert client.reply().startswith("250 2.0.0")
    [envelope] = all_envelopes(clean_queues)["local"]
    assert body_of(clean_queues, envelope).endswith(b"Subject: dots\r\n\r\n.\r\n..leading dots\r\n")
