"""Outages and shutdown: Redis down (451, nothing half-stored, the retry succeeds), the auth service
down (4xx, never a wrong 5xx or a wrong yes), and SIGTERM (finish the transaction, then 421, exit 0)."""

import base64
import json
import os
import signal
import smtplib
import socket
import time
from pathlib import Path

import pytest

from shared.streams import LOCAL_DELIVERY
from tests.fixtures.auth import AuthService
from tests.integration.submission.site import (
    DOMAIN,
    PASSWORD,
    RawSmtp,
    base_env,
    make_certificate,
    start_reception,
)

USER = f"user@{DOMAIN}"
MESSAGE = b"Subject: outage\r\n\r\nbody\r\n"


@pytest.fixture
def directory(auth_service: AuthService) -> AuthService:
    auth_service.add_domain(DOMAIN)
    auth_service.add_user(USER, PASSWORD)
    return auth_service


def test_redis_outage_gets_451_and_the_retry_succeeds(
    directory: AuthService, redis_factory, service_factory
) -> None:
    queue_redis = redis_factory()  # the queues' Redis, separate from the auth service's
    mx = start_reception(service_factory, "mx", base_env(directory, queue_redis.url, None))
    with smtplib.SMTP(mx.host, mx.port, timeout=20) as smtp:
        smtp.ehlo()
        smtp.mail("sender@remote.example")
        smtp.rcpt(USER)
        queue_redis.stop()
        code, reply = smtp.data(MESSAGE)
        assert (code, reply[:5]) == (451, b"4.3.0")

        queue_redis.start()  # same port, same data directory
        smtp.mail("sender@remote.example")
        smtp.rcpt(USER)
        code, reply = smtp.data(MESSAGE)
        assert code == 250
        queue_id = reply.decode().rsplit(" ", 1)[-1]

    client = queue_redis.client()
    try:
        [(_id, fields)] = client.xrange(LOCAL_DELIVERY)
        envelope = json.loads(fields[b"data"])
        assert envelope["queue_id"] == queue_id
        # Exactly one body and its holders: nothing was left behind by the failed attempt.
        assert sorted(client.keys("yubin:body:*")) == sorted(
            [
                f"yubin:body:{envelope['body_id']}".encode(),
                f"yubin:body:{envelope['body_id']}:holders".encode(),
            ]
        )
    finally:
        client.close()


def test_auth_outage_is_temporary(
    directory: AuthService, redis_url: str, service_factory, tmp_path: Path
) -> None:
    env = base_env(directory, redis_url, make_certificate(tmp_path))
    mx = start_reception(service_factory, "mx", env)
    submission = start_reception(service_factory, "submission", env, YUBIN_ALLOW_PLAINTEXT_AUTH="true")
    with RawSmtp(mx.host, mx.port) as warm:  # the MX has the local domain list cached
        warm.reply()
        warm.command("EHLO outage.example")
        warm.command("MAIL FROM:<sender@remote.example>")
        assert warm.command(f"RCPT TO:<{USER}>").startswith("250")
    directory.process.stop()
    time.sleep(1.5)  # past YUBIN_LOCAL_DOMAINS_REFRESH_S: the refresh fails and the cached list is kept

    with RawSmtp(mx.host, mx.port) as client:
        client.reply()
        client.command("EHLO outage.example")
        client.command("MAIL FROM:<sender@remote.example>")
        # Temporary, never "relay access denied" or "user unknown": the sender will retry.
        assert client.command(f"RCPT TO:<{USER}>").startswith("451 4.3.0")
        assert client.command("RCPT TO:<elsewhere@remote.example>").startswith("554 5.7.1")
    with RawSmtp(submission.host, submission.port) as client:
        client.reply()
        client.command("EHLO outage.example")
        credentials = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
        assert client.command(f"AUTH PLAIN {credentials}").startswith("454 4.7.0")


def test_sigterm_finishes_the_transaction_then_exits_0(
    directory: AuthService, redis_url: str, service_factory
) -> None:
    mx = start_reception(service_factory, "mx", base_env(directory, redis_url, None))
    with RawSmtp(mx.host, mx.port) as busy, RawSmtp(mx.host, mx.port) as idle:
        busy.reply()
        idle.reply()
        busy.command("EHLO busy.example")
        idle.command("EHLO idle.example")
        assert busy.command("MAIL FROM:<sender@remote.example>").startswith("250")
        assert busy.command(f"RCPT TO:<{USER}>").startswith("250")

        os.kill(mx.process.pid, signal.SIGTERM)
        assert idle.reply() == "421 4.3.2 mail.alpha.test Service shutting down, try again later"
        assert idle.at_eof()

        assert busy.command("DATA").startswith("354")
        busy.send(MESSAGE + b".\r\n")
        assert busy.reply().startswith("250 2.0.0 Ok: queued as ")
        assert busy.reply() == "421 4.3.2 mail.alpha.test Service shutting down, try again later"
        assert busy.at_eof()

    assert mx.process.proc is not None
    assert mx.process.proc.wait(timeout=15) == 0
    with pytest.raises(OSError):
        socket.create_connection((mx.host, mx.port), timeout=2).close()
