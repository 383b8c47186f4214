"""The submission role (port 587): STARTTLS, AUTH, own-address senders, local and outbound routing."""

import base64
import json
import re
import smtplib
import ssl
import subprocess
from collections.abc import Iterator
from email.message import EmailMessage

import aiosmtplib
import pytest
import redis

from tests.integration.submission.site import (
    DOMAIN,
    PASSWORD,
    REMOTE_DOMAIN,
    RawSmtp,
    Reception,
    Site,
    all_envelopes,
    body_of,
)

ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
CAROL = f"carol@{REMOTE_DOMAIN}"
VICTIM = f"victim@{DOMAIN}"


def no_verify() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@pytest.fixture(scope="module")
def submission(site: Site) -> Reception:
    for user in (ALICE, BOB, VICTIM):
        site.add_user(user)
    return site.start("submission")


def queued_id(reply: bytes | str) -> str:
    text = reply.decode() if isinstance(reply, bytes) else reply
    match = re.search(r"queued as ([0-9A-F]+)", text)
    assert match, text
    return match.group(1)


@pytest.fixture
def tls_session(submission: Reception, clean_queues: redis.Redis) -> Iterator[smtplib.SMTP]:
    """Connected, EHLO'd and under TLS, not yet logged in."""
    with smtplib.SMTP(submission.host, submission.port, local_hostname="laptop.example", timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("starttls")
        assert not smtp.has_extn("auth")  # AUTH only after STARTTLS
        smtp.starttls(context=no_verify())
        smtp.ehlo()
        yield smtp


def test_starttls_auth_plain_routes_local_and_remote(
    tls_session: smtplib.SMTP, clean_queues: redis.Redis
) -> None:
    assert tls_session.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
    tls_session.login(ALICE, PASSWORD)
    message = (
        b"From: alice@alpha.test\r\nTo: bob@alpha.test, carol@remote.example\r\nSubject: hi\r\n\r\nHi!\r\n"
    )
    assert tls_session.mail(ALICE) == (250, b"2.1.0 Ok")
    assert tls_session.rcpt(BOB) == (250, b"2.1.5 Ok")
    assert tls_session.rcpt(CAROL) == (250, b"2.1.5 Ok")
    code, reply = tls_session.data(message)
    assert code == 250
    queue_id = queued_id(reply)

    landed = all_envelopes(clean_queues)
    [local] = landed["local"]
    [outbound] = landed["outbound"]
    assert local["queue_id"] == outbound["queue_id"] == queue_id
    assert local["body_id"] == outbound["body_id"]  # stored once
    assert local["recipients"] == [BOB] and outbound["recipients"] == [CAROL]
    assert local["auth_user"] == outbound["auth_user"] == ALICE
    assert local["sender"] == ALICE
    [trace] = landed["trace"]
    assert (trace["queue_id"], trace["event"], trace["service"]) == (queue_id, "accepted", "submission")
    assert clean_queues.smembers(f"yubin:body:{local['body_id']}:holders") == {
        f"yubin:stream:local:{queue_id}".encode(),
        f"yubin:stream:outbound:{queue_id}".encode(),
    }

    body = body_of(clean_queues, local)
    header_text, _, content = body.partition(b"\r\n\r\n")
    assert content == b"Hi!\r\n"
    headers = header_text.decode()
    assert headers.startswith(
        "Received: from laptop.example ([127.0.0.1])\r\n\tby mail.alpha.test (Yubin submission)"
    )
    assert re.search(r"\(using TLSv1\.[23] with cipher \S+\)", headers)
    assert f"with ESMTPSA id {queue_id};" in headers
    # RFC 6409 §8: the submission server adds what the client left out.
    message_id = re.search(r"^Message-ID: (<[^>]+@mail\.alpha\.test>)\r?$", headers, re.M)
    assert message_id, headers
    assert local["message_id"] == message_id.group(1)
    assert re.search(r"^Date: \w{3}, \d{1,2} \w{3} \d{4} ", headers, re.M)


def test_accepted_message_is_logged_with_queue_id_and_message_id(
    submission: Reception, tls_session: smtplib.SMTP, clean_queues: redis.Redis
) -> None:
    tls_session.login(ALICE, PASSWORD)
    tls_session.mail(ALICE)
    tls_session.rcpt(BOB)
    queue_id = queued_id(tls_session.data(b"Message-ID: <logged@laptop.example>\r\n\r\nx\r\n")[1])
    submission.process.wait_for_log(queue_id)
    [entry] = [
        json.loads(line)
        for line in submission.process.logs().splitlines()
        if queue_id in line and '"message accepted"' in line
    ]
    assert entry["message_id"] == "<logged@laptop.example>"
    assert entry["auth_user"] == ALICE and entry["recipients"] == [BOB]


def test_commands_sent_with_starttls_are_discarded(submission: Reception) -> None:
    """RFC 3207 §4.2 / CVE-2011-0411: plaintext pipelined after STARTTLS must not run inside TLS."""
    with RawSmtp(submission.host, submission.port) as client:
        client.reply()
        client.command("EHLO laptop.example")
        client.send(b"STARTTLS\r\nEHLO injected.example\r\n")
        assert client.reply().startswith("220 2.0.0")
        tls = no_verify().wrap_socket(client.sock, server_hostname="localhost")
        tls.sendall(b"NOOP\r\n")
        assert tls.recv(4096) == b"250 2.0.0 OK\r\n"  # the NOOP's answer, not the injected EHLO's
        tls.close()


def test_auth_before_starttls_is_refused(submission: Reception) -> None:
    with RawSmtp(submission.host, submission.port) as client:
        client.reply()
        assert "AUTH" not in client.command("EHLO laptop.example")
        credentials = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode()).decode()
        assert client.command(f"AUTH PLAIN {credentials}").startswith("538 5.7.11")


async def test_auth_login_with_aiosmtplib_keeps_message_id(
    submission: Reception, clean_queues: redis.Redis
) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = BOB, ALICE, "from aiosmtplib"
    message["Message-ID"] = "<own-id@laptop.example>"
    message["Date"] = "Thu, 26 Nov 2026 10:00:00 +0000"
    message.set_content("Hello via LOGIN")
    client = aiosmtplib.SMTP(
        hostname=submission.host, port=submission.port, start_tls=True, validate_certs=False
    )
    async with client:
        await client.ehlo()  # RFC 3207 §4.2: the session starts over after STARTTLS
        code, _ = await client.auth_login(BOB, PASSWORD)
        assert code == 235
        errors, reply = await client.send_message(message)
    assert errors == {}
    [envelope] = all_envelopes(clean_queues)["local"]
    assert envelope["queue_id"] == queued_id(reply)
    assert envelope["message_id"] == "<own-id@laptop.example>"
    body = body_of(clean_queues, envelope)
    assert body.count(b"Message-ID:") == 1 and body.count(b"\nDate:") == 1


def test_mail_before_auth_is_refused(tls_session: smtplib.SMTP, clean_queues: redis.Redis) -> None:
    code, reply = tls_session.mail(ALICE)
    assert (code, reply[:5]) == (530, b"5.7.0")
    code, reply = tls_session.rcpt(BOB)
    assert code == 503
    assert all_envelopes(clean_queues)["local"] == []


def test_sender_must_be_the_logged_in_user(tls_session: smtplib.SMTP, clean_queues: redis.Redis) -> None:
    tls_session.login(ALICE, PASSWORD)
    for spoofed in (BOB, "<>", f"ALICE@{DOMAIN}", f"alice@{REMOTE_DOMAIN}"):
        code, reply = tls_session.mail(spoofed)
        assert (code, reply[:5]) == (553, b"5.7.1"), spoofed
    code, _ = tls_session.mail("alice@ALPHA.Test")  # the domain is case-blind
    assert code == 250
    tls_session.rcpt(BOB)
    assert tls_session.data(b"Subject: ok\r\n\r\nok\r\n")[0] == 250
    [envelope] = all_envelopes(clean_queues)["local"]
    assert envelope["sender"] == ALICE


def test_unknown_local_recipient_is_refused(tls_session: smtplib.SMTP, clean_queues: redis.Redis) -> None:
    tls_session.login(ALICE, PASSWORD)
    tls_session.mail(ALICE)
    code, reply = tls_session.rcpt(f"nobody@{DOMAIN}")
    assert (code, reply[:5]) == (550, b"5.1.1")
    assert tls_session.rcpt(BOB)[0] == 250
    assert tls_session.data(b"Subject: x\r\n\r\nx\r\n")[0] == 250
    [envelope] = all_envelopes(clean_queues)["local"]
    assert envelope["recipients"] == [BOB]


def plain(username: str, password: str) -> str:
    return "PLAIN " + base64.b64encode(f"\0{username}\0{password}".encode()).decode()


def test_a_guesser_is_throttled_while_the_user_logs_in_from_elsewhere(submission: Reception) -> None:
    # The auth service throttles per (user, client address): submission must pass the real peer address.
    with smtplib.SMTP(submission.host, submission.port, timeout=10, source_address=("127.0.0.42", 0)) as smtp:
        smtp.starttls(context=no_verify())
        smtp.ehlo()
        replies = [smtp.docmd("AUTH", plain(VICTIM, "wrong password")) for _ in range(5)]
        assert [(code, text[:5]) for code, text in replies[:3]] == [(535, b"5.7.8")] * 3
        assert [(code, text[:5]) for code, text in replies[3:]] == [(454, b"4.7.0")] * 2
        # While the delay lasts even the right password is refused (the auth service never checks it).
        code, text = smtp.docmd("AUTH", plain(VICTIM, PASSWORD))
        assert (code, text[:5]) == (454, b"4.7.0")
    with smtplib.SMTP(submission.host, submission.port, timeout=10, source_address=("127.0.0.43", 0)) as smtp:
        smtp.starttls(context=no_verify())
        smtp.ehlo()
        assert smtp.login(VICTIM, PASSWORD)[0] == 235


def test_swaks_submission_with_starttls_and_auth(submission: Reception, clean_queues: redis.Redis) -> None:
    result = subprocess.run(
        [
            "swaks", "--server", f"{submission.host}:{submission.port}", "--tls",
            "--auth", "PLAIN", "--auth-user", ALICE, "--auth-password", PASSWORD,
            "--from", ALICE, "--to", CAROL, "--helo", "swaks.example", "--header", "Subject: swaks",
        ],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    [envelope] = all_envelopes(clean_queues)["outbound"]
    assert envelope["queue_id"] == queued_id(result.stdout)
    assert envelope["recipients"] == [CAROL]


def test_plaintext_auth_when_allowed(site: Site, submission: Reception, clean_queues: redis.Redis) -> None:
    lab = site.start("submission", YUBIN_ALLOW_PLAINTEXT_AUTH="true")
    with smtplib.SMTP(lab.host, lab.port, timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("auth")
        smtp.login(BOB, PASSWORD)
        smtp.mail(BOB)
        smtp.rcpt(ALICE)
        assert smtp.data(b"Subject: plain\r\n\r\nx\r\n")[0] == 250
    [envelope] = all_envelopes(clean_queues)["local"]
    body = body_of(clean_queues, envelope)
    assert b"with ESMTPA id " in body and b"(using TLS" not in body
