"""`250` only after the enqueue's EXEC returned: while Redis holds the EXEC the client hears nothing, and an
EXEC that fails gets 451. (A kill -9 of the MX cannot show a 250 sent too early: the race is too short.)

Redis itself holds the EXEC back, deterministically: `CLIENT PAUSE <ms> WRITE` postpones every write
command, so the MX's MULTI/EXEC waits, visibly (`CLIENT LIST` shows the client in MULTI and blocked),
until `CLIENT UNPAUSE`. `min-replicas-to-write 1` on a Redis without replicas makes EXEC fail.
"""

import select
import time

import pytest
import redis

from shared.streams import LOCAL_DELIVERY
from tests.fixtures.auth import AuthService
from tests.integration.submission.site import DOMAIN, PASSWORD, RawSmtp, base_env, start_reception

USER = f"user@{DOMAIN}"
MESSAGE = b"Subject: durable\r\nMessage-ID: <durable@remote.example>\r\n\r\nbody\r\n"


@pytest.fixture
def directory(auth_service: AuthService) -> AuthService:
    auth_service.add_domain(DOMAIN)
    auth_service.add_user(USER, PASSWORD)
    return auth_service


def start_transaction(client: RawSmtp) -> None:
    assert client.reply().startswith("220")
    client.command("EHLO sender.example")
    assert client.command("MAIL FROM:<sender@remote.example>").startswith("250")
    assert client.command(f"RCPT TO:<{USER}>").startswith("250")
    assert client.command("DATA").startswith("354")


def exec_held(admin: redis.Redis) -> bool:
    """Some client is inside MULTI and blocked: its EXEC waits for the pause to end."""
    return any("x" in c["flags"] and "b" in c["flags"] for c in admin.client_list())


def wait_for(check, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for: {what}")


def test_no_250_while_the_exec_is_held_and_250_once_it_returned(
    directory: AuthService, redis_factory, service_factory
) -> None:
    queue_redis = redis_factory()
    mx = start_reception(service_factory, "mx", base_env(directory, queue_redis.url, None))
    admin = queue_redis.client()
    try:
        with RawSmtp(mx.host, mx.port) as client:
            start_transaction(client)
            admin.execute_command("CLIENT", "PAUSE", "60000", "WRITE")
            try:
                client.send(MESSAGE + b".\r\n")
                wait_for(lambda: exec_held(admin), "the MX's EXEC held by Redis")
                # The EXEC has not returned, so nothing may have been said. (A 250 sent before the
                # EXEC was issued would already be here: it left before the MULTI reached Redis.)
                readable, _, _ = select.select([client.sock], [], [], 1.0)
                assert readable == [] and client.buffer == b"", "a reply before EXEC returned"
                assert admin.xlen(LOCAL_DELIVERY) == 0
            finally:
                admin.execute_command("CLIENT", "UNPAUSE")
            reply = client.reply()
            assert reply.startswith("250 2.0.0 Ok: queued as "), reply
            [(_id, fields)] = admin.xrange(LOCAL_DELIVERY)
            assert reply.rsplit(" ", 1)[-1].encode() in fields[b"data"]
    finally:
        admin.close()


def test_an_exec_that_fails_gets_451_and_stores_nothing(
    directory: AuthService, redis_factory, service_factory
) -> None:
    queue_redis = redis_factory()
    mx = start_reception(service_factory, "mx", base_env(directory, queue_redis.url, None))
    admin = queue_redis.client()
    try:
        with RawSmtp(mx.host, mx.port) as client:
            start_transaction(client)
            admin.config_set("min-replicas-to-write", 1)  # no replica: every write is refused
            try:
                reply = client.command(MESSAGE + b".")
            finally:
                admin.config_set("min-replicas-to-write", 0)
            assert reply.startswith("451 4.3.0"), reply
            assert admin.xlen(LOCAL_DELIVERY) == 0
            assert admin.keys("yubin:body:*") == []
    finally:
        admin.close()
