"""RFC 5321 §4.1.2 path syntax at a real MX process: malformed MAIL FROM gets 501 5.1.7, malformed
RCPT TO 501 5.1.3, and nothing malformed is ever accepted (the grammar itself: tests/unit/submission)."""

from collections.abc import Iterator

import pytest
import redis

from tests.integration.submission.site import DOMAIN, RawSmtp, Reception, Site

USER = f"paths@{DOMAIN}"


@pytest.fixture(scope="module")
def mx(site: Site) -> Reception:
    site.add_user(USER)
    return site.start("mx", YUBIN_MAX_ERRORS="1000")


@pytest.fixture
def session(mx: Reception, clean_queues: redis.Redis) -> Iterator[RawSmtp]:
    with RawSmtp(mx.host, mx.port) as client:
        assert client.reply().startswith("220 ")
        assert client.command("EHLO client.remote.example").startswith("250")
        yield client


BAD_SENDERS = [
    "MAIL FROM:someone@remote.example",
    "MAIL FROM:<someone@remote.example",
    "MAIL FROM:someone@remote.example>",
    "MAIL FROM:<someone@remote.example>junk",
    "MAIL FROM:<someone@remote.example> (comment)",
    "MAIL FROM:< someone@remote.example>",
    "MAIL FROM:<someone(x)@remote.example>",
    "MAIL FROM:<someone>",
    "MAIL FROM:<<someone@remote.example>>",
    "MAIL FROM:",
    "MAIL FROM:<Postmaster>",
]

BAD_RECIPIENTS = [
    f"RCPT TO:{USER}",
    f"RCPT TO:<{USER}",
    f"RCPT TO:{USER}>",
    f"RCPT TO:<{USER}>junk",
    f"RCPT TO:<{USER}> (comment)",
    f"RCPT TO:<{USER} >",
    "RCPT TO:<>",
    "RCPT TO:<paths>",
    f"RCPT TO:<paths@@{DOMAIN}>",
    "RCPT TO:",
]


@pytest.mark.parametrize("command", BAD_SENDERS)
def test_malformed_sender_is_refused_with_5_1_7(session: RawSmtp, command: str) -> None:
    assert session.command(command).startswith("501 5.1.7 ")
    # ... and no transaction was started by it
    assert session.command(f"RCPT TO:<{USER}>").startswith("503 5.5.1 ")


@pytest.mark.parametrize("command", BAD_RECIPIENTS)
def test_malformed_recipient_is_refused_with_5_1_3(session: RawSmtp, command: str) -> None:
    assert session.command("MAIL FROM:<someone@remote.example>").startswith("250 2.1.0")
    assert session.command(command).startswith("501 5.1.3 ")
    assert session.command("DATA").startswith("554 5.5.1 ")  # nothing was accepted


@pytest.mark.parametrize(
    ("mail", "rcpt"),
    [
        ("MAIL FROM:<someone@remote.example>", f"RCPT TO:<{USER}>"),
        ("MAIL FROM: <someone@remote.example>", f"RCPT TO: <{USER}>"),  # the space Postfix tolerates too
        ("mail from:<> BODY=8BITMIME SIZE=100", f"rcpt to:<{USER.upper()}>"),
        ("MAIL FROM:<> body=8bitmime smtputf8", f"RCPT TO:<{USER}>"),
        ("MAIL FROM:<@relay.example:someone@remote.example>", f"RCPT TO:<@a.example,@b.example:{USER}>"),
        ('MAIL FROM:<"some one"@remote.example>', f"RCPT TO:<{USER}>"),
        ("MAIL FROM:<someone@[192.0.2.1]>", f"RCPT TO:<{USER}>"),
    ],
)
def test_valid_paths_are_accepted(session: RawSmtp, mail: str, rcpt: str) -> None:
    assert session.command(mail).startswith("250 2.1.0")
    assert session.command(rcpt).startswith("250 2.1.5")


def test_parameters_after_the_path(session: RawSmtp) -> None:
    assert session.command("MAIL FROM:<a@remote.example> FOO=1").startswith("555 5.5.4 ")
    assert session.command("MAIL FROM:<a@remote.example> BODY=BINARYMIME").startswith("501 5.5.4 ")
    assert session.command("MAIL FROM:<a@remote.example> SIZE=x").startswith("501 5.5.4 ")
    assert session.command("MAIL FROM:<a@remote.example> SIZE=999999999999").startswith("552 5.3.4 ")
    assert session.command("MAIL FROM:<a@remote.example> SMTPUTF8=yes").startswith("501 5.5.4 ")
    assert session.command("MAIL FROM:<a@remote.example> SIZE=10 BODY=7BIT").startswith("250 2.1.0")
    assert session.command("MAIL FROM:<b@remote.example>").startswith("503 5.5.1 ")  # nested
    assert session.command(f"RCPT TO:<{USER}> NOTIFY=NEVER").startswith("555 5.5.4 ")


def test_utf8_paths_need_smtputf8(session: RawSmtp) -> None:
    assert session.command("MAIL FROM:<bøb@remote.example>").startswith("553 5.6.7 ")
    assert session.command("MAIL FROM:<bøb@remote.example> SMTPUTF8").startswith("250 2.1.0")
    assert session.command(f"RCPT TO:<{USER}>").startswith("250 2.1.5")


def test_parameters_need_ehlo(mx: Reception, clean_queues: redis.Redis) -> None:
    with RawSmtp(mx.host, mx.port) as client:
        client.reply()
        assert client.command("HELO client.remote.example").startswith("250")
        assert client.command("MAIL FROM:<a@remote.example> SIZE=10").startswith("501 5.5.4 ")
        assert client.command("MAIL FROM:<a@remote.example>").startswith("250 2.1.0")
