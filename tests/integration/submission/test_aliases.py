"""postmaster@ (RFC 5321 §4.5.1), abuse@ (RFC 2142) and aliases at the real MX and submission processes:
accepted although no such user exists, expanded at RCPT into local and outbound recipients of one message."""

import re
import smtplib
from collections.abc import Iterator

import pytest
import redis

from tests.integration.submission.site import DOMAIN, PASSWORD, REMOTE_DOMAIN, Reception, Site, all_envelopes

ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
CAROL = f"carol@{REMOTE_DOMAIN}"
OTHER_DOMAIN = "gamma.test"  # created with a postmaster target
MESSAGE = b"From: someone@remote.example\r\nSubject: to an alias\r\n\r\nHello.\r\n"


@pytest.fixture(scope="module")
def receptions(site: Site) -> tuple[Reception, Reception]:
    site.add_user(ALICE)
    site.add_user(BOB)
    # The module's site made alpha.test without a target; its role alias is added by hand here.
    site.auth.add_alias(f"postmaster@{DOMAIN}", ALICE)
    site.auth.add_domain(OTHER_DOMAIN, postmaster=BOB)
    site.auth.add_alias(f"team@{DOMAIN}", BOB, CAROL, f"postmaster@{DOMAIN}")
    site.auth.add_alias(f"ping@{DOMAIN}", f"pong@{DOMAIN}")
    site.auth.add_alias(f"pong@{DOMAIN}", f"ping@{DOMAIN}")
    # The reception's host name is mail.alpha.test: the bare <Postmaster> is postmaster@alpha.test.
    return site.start("mx"), site.start("submission")


@pytest.fixture
def mx(receptions: tuple[Reception, Reception], clean_queues: redis.Redis) -> Iterator[smtplib.SMTP]:
    reception = receptions[0]
    with smtplib.SMTP(
        reception.host, reception.port, local_hostname="client.remote.example", timeout=10
    ) as smtp:
        smtp.ehlo()
        yield smtp


@pytest.fixture
def submission(receptions: tuple[Reception, Reception], clean_queues: redis.Redis) -> Iterator[smtplib.SMTP]:
    reception = receptions[1]
    with smtplib.SMTP(reception.host, reception.port, local_hostname="laptop.example", timeout=10) as smtp:
        smtp.ehlo()
        smtp.starttls()
        smtp.ehlo()
        smtp.login(BOB, PASSWORD)
        yield smtp


def queued_id(reply: bytes) -> str:
    match = re.search(rb"queued as ([0-9A-F]+)", reply)
    assert match, reply
    return match.group(1).decode()


@pytest.mark.parametrize(
    ("rcpt", "final", "original"),
    [
        ("Postmaster", ALICE, f"postmaster@{DOMAIN}"),
        ("POSTMASTER", ALICE, f"postmaster@{DOMAIN}"),
        (f"PostMaster@{DOMAIN.upper()}", ALICE, f"postmaster@{DOMAIN}"),
        (f"postmaster@{OTHER_DOMAIN}", BOB, f"postmaster@{OTHER_DOMAIN}"),
        (f"Abuse@{OTHER_DOMAIN}", BOB, f"abuse@{OTHER_DOMAIN}"),
    ],
)
def test_mx_accepts_postmaster_and_abuse(
    mx: smtplib.SMTP, clean_queues: redis.Redis, rcpt: str, final: str, original: str
) -> None:
    assert mx.mail("someone@remote.example")[0] == 250
    assert mx.rcpt(rcpt) == (250, b"2.1.5 Ok")
    code, reply = mx.data(MESSAGE)
    assert code == 250
    landed = all_envelopes(clean_queues)
    assert landed["outbound"] == []
    [envelope] = landed["local"]
    assert envelope["queue_id"] == queued_id(reply)
    assert envelope["recipients"] == [final]
    assert envelope["original_recipients"] == {final: original}


def test_submission_accepts_postmaster(submission: smtplib.SMTP, clean_queues: redis.Redis) -> None:
    assert submission.mail(BOB)[0] == 250
    assert submission.rcpt("<Postmaster>") == (250, b"2.1.5 Ok")
    assert submission.rcpt(f"postmaster@{OTHER_DOMAIN}") == (250, b"2.1.5 Ok")
    assert submission.data(MESSAGE)[0] == 250
    [envelope] = all_envelopes(clean_queues)["local"]
    assert envelope["recipients"] == [ALICE, BOB]
    assert envelope["original_recipients"] == {
        ALICE: f"postmaster@{DOMAIN}",
        BOB: f"postmaster@{OTHER_DOMAIN}",
    }


def test_submission_does_not_relay_to_address_literals(
    submission: smtplib.SMTP, clean_queues: redis.Redis
) -> None:
    assert submission.mail(BOB)[0] == 250
    code, text = submission.rcpt("carol@[192.0.2.1]")
    assert code == 550 and text.startswith(b"5.1.2 ")
    assert submission.rcpt(CAROL) == (250, b"2.1.5 Ok")


def test_alias_with_local_and_remote_destinations_is_one_message(
    mx: smtplib.SMTP, clean_queues: redis.Redis
) -> None:
    assert mx.mail("someone@remote.example")[0] == 250
    assert mx.rcpt(f"team@{DOMAIN}") == (250, b"2.1.5 Ok")
    assert mx.rcpt(BOB) == (250, b"2.1.5 Ok")  # also named directly: still one copy
    code, reply = mx.data(MESSAGE)
    assert code == 250
    landed = all_envelopes(clean_queues)
    [local] = landed["local"]
    [outbound] = landed["outbound"]
    assert local["queue_id"] == outbound["queue_id"] == queued_id(reply)
    assert local["body_id"] == outbound["body_id"]  # stored once, published to both in one MULTI
    assert local["recipients"] == [BOB, ALICE]
    assert local["original_recipients"] == {BOB: f"team@{DOMAIN}", ALICE: f"team@{DOMAIN}"}
    assert outbound["recipients"] == [CAROL]
    assert outbound["sender"] == "someone@remote.example"
    [trace] = landed["trace"]
    assert trace["detail"]["recipients"] == [BOB, CAROL, ALICE]


def test_alias_loop_is_refused_without_multiplying(mx: smtplib.SMTP, clean_queues: redis.Redis) -> None:
    assert mx.mail("someone@remote.example")[0] == 250
    code, text = mx.rcpt(f"ping@{DOMAIN}")
    assert code == 550 and text.startswith(b"5.4.6 ")
    assert mx.rcpt(f"nobody@{DOMAIN}")[0] == 550  # unknown users stay unknown
    assert all_envelopes(clean_queues)["local"] == []


def test_postmaster_without_a_domain_is_not_a_relay(
    receptions: tuple[Reception, Reception], site: Site, clean_queues: redis.Redis
) -> None:
    """The bare <Postmaster> is always ours: with a host name outside our domains it is refused."""
    reception = site.start("submission", YUBIN_HOSTNAME="mx.elsewhere.example")
    with smtplib.SMTP(reception.host, reception.port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.starttls()
        smtp.login(BOB, PASSWORD)
        assert smtp.mail(BOB)[0] == 250
        assert smtp.rcpt("<Postmaster>")[0] == 550
    assert all_envelopes(clean_queues)["outbound"] == []
