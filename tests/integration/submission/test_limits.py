"""Bounded everything: recipients, errors, connections, idle and total session time."""

import smtplib
import time

import pytest
import redis

from tests.integration.submission.site import DOMAIN, RawSmtp, Reception, Site, all_envelopes

USERS = [f"user{i}@{DOMAIN}" for i in range(5)]
MESSAGE = b"Subject: limits\r\n\r\nbody\r\n"


@pytest.fixture(scope="module")
def mx(site: Site) -> Reception:
    for user in USERS:
        site.add_user(user)
    return site.start(
        "mx",
        YUBIN_MAX_RECIPIENTS="3",
        YUBIN_MAX_ERRORS="4",
        YUBIN_MAX_CONNECTIONS="3",
        YUBIN_IDLE_TIMEOUT_S="2",
        YUBIN_SESSION_TIMEOUT_S="4",
    )


def test_too_many_recipients(mx: Reception, clean_queues: redis.Redis) -> None:
    with smtplib.SMTP(mx.host, mx.port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail("sender@remote.example")
        codes = [smtp.rcpt(user) for user in USERS[:4]]
        assert [code for code, _ in codes] == [250, 250, 250, 452]
        assert codes[3][1].startswith(b"4.5.3")
        assert smtp.data(MESSAGE)[0] == 250
    [envelope] = all_envelopes(clean_queues)["local"]
    assert envelope["recipients"] == USERS[:3]


def test_too_many_errors_ends_the_session(mx: Reception) -> None:
    with RawSmtp(mx.host, mx.port) as client:
        client.reply()
        replies = [client.command(f"BOGUS{i}") for i in range(3)]
        assert all(r.startswith("500 5.5.2") for r in replies)
        assert client.command("RCPT TO:<x@alpha.test>").startswith("503 5.5.1")  # the 4th error
        assert client.reply() == "421 4.7.0 mail.alpha.test Error: too many errors"
        assert client.at_eof()


def test_idle_session_is_closed(mx: Reception) -> None:
    with RawSmtp(mx.host, mx.port) as client:
        client.reply()
        client.command("EHLO idle.example")
        assert client.reply() == "421 4.4.2 mail.alpha.test Error: timeout exceeded"  # waits ~2 s
        assert client.at_eof()


def test_session_time_is_bounded(mx: Reception) -> None:
    with RawSmtp(mx.host, mx.port) as client:
        client.reply()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # busy, never idle, but it cannot last forever
            reply = client.command("NOOP")
            if reply.startswith("421"):
                break
            assert reply.startswith("250 2.0.0")
            time.sleep(0.2)
        assert reply == "421 4.4.2 mail.alpha.test Error: session time limit exceeded"
        assert client.at_eof()


def test_connection_limit(mx: Reception) -> None:
    clients = [RawSmtp(mx.host, mx.port) for _ in range(3)]
    try:
        for client in clients:
            assert client.reply().startswith("220 ")
        with RawSmtp(mx.host, mx.port) as one_too_many:
            assert (
                one_too_many.reply()
                == "421 4.7.0 mail.alpha.test Error: too many connections, try again later"
            )
            assert one_too_many.at_eof()
        clients.pop().close()
        # The freed slot is taken back once the server has seen the close.
        for _ in range(50):
            with RawSmtp(mx.host, mx.port) as again:
                if again.reply().startswith("220 "):
                    break
            time.sleep(0.05)
        else:
            pytest.fail("the freed connection slot was never reused")
    finally:
        for client in clients:
            client.close()


def test_pipelined_recipients_over_the_limit_are_not_errors(mx: Reception, clean_queues: redis.Redis) -> None:
    """A pipelining client sends every RCPT before it sees a 452; that must not end its session."""
    with RawSmtp(mx.host, mx.port) as client:
        client.reply()
        client.command("EHLO many.example")
        client.send(
            b"MAIL FROM:<sender@remote.example>\r\n"
            + b"".join(f"RCPT TO:<{user}>\r\n".encode() for user in USERS)
            + b"RCPT TO:<user0@alpha.test>\r\nDATA\r\n"
        )
        answers = [client.reply()[:9] for _ in range(len(USERS) + 3)]
        assert answers == ["250 2.1.0"] + ["250 2.1.5"] * 3 + ["452 4.5.3"] * 3 + ["354 End d"]
        client.send(MESSAGE + b".\r\n")
        assert client.reply().startswith("250 2.0.0 Ok: queued as ")
    [envelope] = all_envelopes(clean_queues)["local"]
    assert envelope["recipients"] == USERS[:3]
