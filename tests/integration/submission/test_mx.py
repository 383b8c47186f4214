"""The MX role (port 25) as a real process, talked to by smtplib, swaks and raw sockets."""

import re
import smtplib
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis

from tests.integration.submission.site import (
    DOMAIN,
    RawSmtp,
    Reception,
    Site,
    all_envelopes,
    body_of,
)

ENHANCED = re.compile(r"^\d{3}[ -][245]\.\d{1,3}\.\d{1,3} ")
USER = f"rcpt@{DOMAIN}"
OTHER_USER = f"other@{DOMAIN}"
DISABLED = f"disabled@{DOMAIN}"

MESSAGE = b"From: someone@remote.example\r\nTo: rcpt@alpha.test\r\nSubject: hello\r\n\r\nHello there.\r\n"


@pytest.fixture(scope="module")
def mx(site: Site) -> Reception:
    site.add_user(USER)
    site.add_user(OTHER_USER)
    site.add_user(DISABLED)
    site.auth.patch_user(DISABLED, enabled=False)
    return site.start("mx", YUBIN_MAX_MESSAGE_SIZE="65536")


@pytest.fixture
def smtp(mx: Reception, clean_queues: redis.Redis) -> Iterator[smtplib.SMTP]:
    with smtplib.SMTP(mx.host, mx.port, local_hostname="client.remote.example", timeout=10) as client:
        yield client


def queued_id(reply: bytes | str) -> str:
    text = reply.decode() if isinstance(reply, bytes) else reply
    match = re.search(r"queued as ([0-9A-F]+)", text)
    assert match, text
    return match.group(1)


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")
def test_ipv6_client_is_named_by_an_ipv6_address_literal(
    site: Site, mx: Reception, clean_queues: redis.Redis
) -> None:
    """RFC 5321 §4.1.3: `[IPv6:::1]` in Received, and the limits count the client as `::1`."""
    mx = site.start("mx", host="::1", YUBIN_MAX_CONNECTIONS_PER_IP="1")
    for _ in range(50):  # the fixture's readiness probe holds the one slot until the server sees it close
        client = RawSmtp(mx.host, mx.port)
        if client.reply().startswith("220 "):
            break
        client.close()
        time.sleep(0.1)
    else:
        pytest.fail("never got a session")
    with client:
        with RawSmtp(mx.host, mx.port) as second:
            assert second.reply() == "421 4.7.0 mail.alpha.test Error: too many connections from ::1"
        assert client.command("EHLO v6.remote.example").startswith("250-")
        assert client.command("MAIL FROM:<someone@remote.example>").startswith("250 ")
        assert client.command(f"RCPT TO:<{USER}>").startswith("250 ")
        assert client.command("DATA").startswith("354 ")
        assert client.command(MESSAGE + b".").startswith("250 2.0.0 Ok: queued as ")
    [envelope] = all_envelopes(clean_queues)["local"]
    assert envelope["client_addr"] == "::1"
    received = body_of(clean_queues, envelope)[: -len(MESSAGE)].decode()
    assert received.startswith("Received: from v6.remote.example ([IPv6:::1])\r\n")


def test_accepts_mail_for_a_local_user(smtp: smtplib.SMTP, clean_queues: redis.Redis) -> None:
    smtp.ehlo()
    assert smtp.mail("someone@remote.example") == (250, b"2.1.0 Ok")
    assert smtp.rcpt(USER) == (250, b"2.1.5 Ok")
    code, reply = smtp.data(MESSAGE)
    assert code == 250 and reply.startswith(b"2.0.0 Ok: queued as ")
    queue_id = queued_id(reply)

    landed = all_envelopes(clean_queues)
    assert landed["outbound"] == []
    [envelope] = landed["local"]
    assert envelope["queue_id"] == queue_id
    assert envelope["sender"] == "someone@remote.example"
    assert envelope["recipients"] == [USER]
    assert envelope["auth_user"] is None
    assert envelope["hop_count"] == 1
    assert envelope["helo"] == "client.remote.example"
    assert envelope["client_addr"] == "127.0.0.1"
    [trace] = landed["trace"]
    assert (trace["queue_id"], trace["event"], trace["service"]) == (queue_id, "accepted", "mx")

    body = body_of(clean_queues, envelope)
    assert body.endswith(MESSAGE)
    received = body[: -len(MESSAGE)].decode()
    assert received.startswith("Received: from client.remote.example ([127.0.0.1])\r\n")
    assert "by mail.alpha.test (Yubin mx)" in received
    assert f"with ESMTP id {queue_id};" in received
    assert b"Message-ID" not in body  # the MX role passes messages on as they came
    assert envelope["size"] == len(body)


def test_null_sender_is_accepted(smtp: smtplib.SMTP, clean_queues: redis.Redis) -> None:
    smtp.ehlo()
    assert smtp.mail("<>")[0] == 250
    assert smtp.rcpt(USER)[0] == 250
    assert smtp.data(MESSAGE)[0] == 250
    [envelope] = all_envelopes(clean_queues)["local"]
    assert envelope["sender"] == ""


def test_unknown_and_disabled_recipients_refused_others_kept(
    smtp: smtplib.SMTP, clean_queues: redis.Redis
) -> None:
    smtp.ehlo()
    smtp.mail("someone@remote.example")
    assert smtp.rcpt(USER) == (250, b"2.1.5 Ok")
    code, reply = smtp.rcpt(f"nobody@{DOMAIN}")
    assert (code, reply[:5]) == (550, b"5.1.1")
    code, reply = smtp.rcpt(DISABLED)
    assert (code, reply[:5]) == (550, b"5.1.1")
    assert smtp.rcpt(OTHER_USER.upper())[0] == 250  # canonical lower-case from the auth service
    code, reply = smtp.data(MESSAGE)
    assert code == 250
    [envelope] = all_envelopes(clean_queues)["local"]
    assert envelope["queue_id"] == queued_id(reply)
    assert envelope["recipients"] == [USER, OTHER_USER]


@pytest.mark.parametrize(
    "recipient",
    [
        "<victim@remote.example>",
        f"<victim%remote.example@{DOMAIN}>",
        f"<@{DOMAIN}:victim@remote.example>",
        f'<"victim@remote.example"@{DOMAIN}>',
        f"<remote.example!victim@{DOMAIN}>",
        "<victim@[127.0.0.1]>",
    ],
)
def test_no_open_relay(mx: Reception, clean_queues: redis.Redis, recipient: str) -> None:
    with RawSmtp(mx.host, mx.port) as client:
        client.reply()
        client.command("EHLO relay-test.example")
        assert client.command("MAIL FROM:<spammer@remote.example>").startswith("250 2.1.0")
        reply = client.command(f"RCPT TO:{recipient}")
        assert reply.startswith("554 5.7.1 ") and "Relay access denied" in reply
        assert client.command("DATA").startswith("554 5.5.1")
    assert all_envelopes(clean_queues) == {"local": [], "outbound": [], "trace": []}


def test_no_auth_on_mx(smtp: smtplib.SMTP) -> None:
    smtp.ehlo()
    assert not smtp.has_extn("auth")
    for extension in ("pipelining", "8bitmime", "smtputf8", "enhancedstatuscodes"):
        assert smtp.has_extn(extension), extension
    assert smtp.esmtp_features["size"] == "65536"
    code, reply = smtp.docmd("AUTH", "PLAIN AHJjcHRAYWxwaGEudGVzdABjb3JyZWN0")
    assert (code, reply[:5]) == (502, b"5.5.1")


def test_vrfy_and_expn_reveal_nothing(smtp: smtplib.SMTP) -> None:
    smtp.ehlo()
    existing = smtp.verify(USER)
    missing = smtp.verify(f"nobody@{DOMAIN}")
    assert existing == missing
    assert existing[0] == 252 and existing[1].startswith(b"2.5.0")
    code, reply = smtp.expn("staff")
    assert (code, reply[:5]) == (502, b"5.5.1")


def test_every_reply_has_an_enhanced_code(mx: Reception) -> None:
    with RawSmtp(mx.host, mx.port) as client:
        assert client.reply().startswith("220 mail.alpha.test ESMTP")  # the greeting is exempt
        assert client.command("EHLO x.example").startswith("250-mail.alpha.test")  # so is EHLO
        commands = [
            "NOOP",
            "HELP",
            "RCPT TO:<rcpt@alpha.test>",  # before MAIL
            "DATA",  # before MAIL
            "MAIL FROM:bogus",
            "MAIL FROM:<a@remote.example> FROB=1",
            "MAIL FROM:<a@remote.example>",
            "MAIL FROM:<b@remote.example>",  # nested
            "RCPT TO:<>",
            "RCPT TO:<rcpt@alpha.test> NOTIFY=NEVER",
            "RSET",
            "STARTTLS",  # not configured on this listener
        ]
        for command in commands:
            reply = client.command(command)
            assert ENHANCED.match(reply), (command, reply)
        # Errors count toward the per-session limit; a fresh session for the rest.
    with RawSmtp(mx.host, mx.port) as client:
        client.reply()
        for command in ("FROBNICATE", "EHLO", "VRFY", "EXPN x", "AUTH PLAIN", "QUIT"):
            reply = client.command(command)
            assert ENHANCED.match(reply), (command, reply)


def test_pipelined_transaction_in_one_write(mx: Reception, clean_queues: redis.Redis) -> None:
    with RawSmtp(mx.host, mx.port) as client:
        client.reply()
        client.send(
            b"EHLO pipe.example\r\n"
            b"MAIL FROM:<pipe@remote.example>\r\n"
            b"RCPT TO:<rcpt@alpha.test>\r\n"
            b"RCPT TO:<nobody@alpha.test>\r\n"
            b"RCPT TO:<other@alpha.test>\r\n"
            b"DATA\r\n"
        )
        assert "250-PIPELINING" in client.reply()
        replies = [client.reply() for _ in range(5)]
        assert [r[:9] for r in replies] == ["250 2.1.0", "250 2.1.5", "550 5.1.1", "250 2.1.5", "354 End d"]
        client.send(b"Subject: piped\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        queue_id = queued_id(client.reply())
        assert client.reply().startswith("221 2.0.0")
    [envelope] = all_envelopes(clean_queues)["local"]
    assert envelope["queue_id"] == queue_id
    assert envelope["recipients"] == [USER, OTHER_USER]


def test_replies_to_a_pipelined_group_go_out_together(mx: Reception, clean_queues: redis.Redis) -> None:
    """One TLS record per write: a TLS socket's recv returns one record, so it shows how the server wrote.
    The replies to a pipelined group (RFC 2920) go out in one write, as does a multi-line EHLO reply."""
    with socket.create_connection((mx.host, mx.port), timeout=10) as plain:
        assert plain.recv(4096).startswith(b"220 ")
        plain.sendall(b"EHLO pipe.example\r\n")
        while not re.search(rb"(^|\n)250 [^\n]*\r\n$", (ehlo := plain.recv(4096))):
            pass  # plain text: one recv may or may not hold all lines, read to the last
        plain.sendall(b"STARTTLS\r\n")
        assert plain.recv(4096).startswith(b"220 ")
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        with context.wrap_socket(plain, server_hostname="localhost") as tls:
            tls.sendall(b"EHLO pipe.example\r\n")
            ehlo = tls.recv(65536)
            assert ehlo.startswith(b"250-") and b"250-PIPELINING\r\n" in ehlo and ehlo.count(b"\r\n250 ") == 1
            tls.sendall(
                b"MAIL FROM:<pipe@remote.example>\r\n"
                b"RCPT TO:<rcpt@alpha.test>\r\n"
                b"RCPT TO:<nobody@alpha.test>\r\n"
                b"DATA\r\n"
            )
            replies = tls.recv(65536).decode().splitlines()
            assert [r[:9] for r in replies] == ["250 2.1.0", "250 2.1.5", "550 5.1.1", "354 End d"]
            tls.sendall(b"Subject: piped over TLS\r\n\r\nbody\r\n.\r\nQUIT\r\n")
            queue_id = queued_id(tls.recv(65536))
    [envelope] = all_envelopes(clean_queues)["local"]
    assert envelope["queue_id"] == queue_id
    assert envelope["recipients"] == [USER]


def test_swaks_with_pipelining(mx: Reception, clean_queues: redis.Redis) -> None:
    result = subprocess.run(
        [
            "swaks", "--server", f"{mx.host}:{mx.port}", "--pipeline",
            "--from", "swaks@remote.example", "--to", USER,
            "--helo", "swaks.remote.example", "--header", "Subject: via swaks",
        ],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    queue_id = queued_id(result.stdout)
    [envelope] = all_envelopes(clean_queues)["local"]
    assert envelope["queue_id"] == queue_id
    assert b"Subject: via swaks" in body_of(clean_queues, envelope)


def test_mail_loop_is_refused(smtp: smtplib.SMTP, clean_queues: redis.Redis) -> None:
    hops = b"".join(
        b"Received: from hop%d.example by hop%d.example; Thu, 1 Jan 2026 00:00:00 +0000\r\n" % (i, i)
        for i in range(51)
    )
    smtp.ehlo()
    smtp.mail("loop@remote.example")
    smtp.rcpt(USER)
    code, reply = smtp.data(hops + MESSAGE)
    assert (code, reply[:5]) == (554, b"5.4.6")
    assert all_envelopes(clean_queues)["local"] == []

    smtp.mail("loop@remote.example")
    smtp.rcpt(USER)
    fifty = b"".join(hops.splitlines(keepends=True)[:50])
    assert smtp.data(fifty + MESSAGE)[0] == 250
    [envelope] = all_envelopes(clean_queues)["local"]
    assert envelope["hop_count"] == 51


def test_oversize_message_refused_and_nothing_stored(smtp: smtplib.SMTP, clean_queues: redis.Redis) -> None:
    smtp.ehlo()
    code, reply = smtp.docmd("MAIL", "FROM:<big@remote.example> SIZE=100000")
    assert (code, reply[:5]) == (552, b"5.3.4")
    smtp.mail("big@remote.example")  # no SIZE declared: found out while reading
    smtp.rcpt(USER)
    big = MESSAGE + (b"x" * 900 + b"\r\n") * 80
    code, reply = smtp.data(big)
    assert (code, reply[:5]) == (552, b"5.3.4")
    assert clean_queues.keys("yubin:body:*") == []
    assert all_envelopes(clean_queues) == {"local": [], "outbound": [], "trace": []}
    # The session goes on.
    smtp.mail("small@remote.example")
    smtp.rcpt(USER)
    assert smtp.data(MESSAGE)[0] == 250


def test_too_long_line_refused(smtp: smtplib.SMTP, clean_queues: redis.Redis) -> None:
    smtp.ehlo()
    smtp.mail("long@remote.example")
    smtp.rcpt(USER)
    code, reply = smtp.data(MESSAGE + b"y" * 5000 + b"\r\n")
    assert (code, reply[:5]) == (500, b"5.5.2")
    assert all_envelopes(clean_queues)["local"] == []


def test_garbage_gets_errors_and_others_are_still_served(mx: Reception, clean_queues: redis.Redis) -> None:
    with RawSmtp(mx.host, mx.port) as garbage:
        garbage.reply()
        garbage.send(bytes(range(256)) * 3 + b"\r\n")
        first = garbage.reply()
        assert first[:1] == "5" and ENHANCED.match(first), first
        garbage.send(b"\x00\xff\xfe MAIL FROM:<\x00@x>\r\n" + b"A" * 10_000 + b"\r\n")
        assert garbage.reply().startswith("5")
        # Meanwhile another client is served normally.
        with smtplib.SMTP(mx.host, mx.port, timeout=10) as good:
            good.ehlo("good.example")
            good.mail("good@remote.example")
            good.rcpt(USER)
            assert good.data(MESSAGE)[0] == 250
        # The garbage session itself still works too, once it speaks SMTP.
        garbage.send(b"EHLO sentinel.example\r\n")
        while not (reply := garbage.reply()).startswith("250-mail.alpha.test"):
            assert reply.startswith("5") and ENHANCED.match(reply), reply
        assert garbage.command("MAIL FROM:<ok@remote.example>").startswith("250 2.1.0")
    assert mx.process.alive()
    assert len(all_envelopes(clean_queues)["local"]) == 1


def test_new_local_domain_is_picked_up_after_the_refresh(site: Site, mx: Reception) -> None:
    site.auth.add_domain("gamma.test")
    site.add_user("new@gamma.test")
    deadline = time.monotonic() + 10  # YUBIN_LOCAL_DOMAINS_REFRESH_S is 1, YUBIN_AUTH_CACHE_TTL_S 0.5
    with smtplib.SMTP(mx.host, mx.port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail("someone@remote.example")
        while (reply := smtp.rcpt("new@gamma.test"))[0] != 250 and time.monotonic() < deadline:
            assert reply[0] == 554  # relay access denied until the cached domain list is refreshed
            time.sleep(0.2)
        assert reply == (250, b"2.1.5 Ok")
