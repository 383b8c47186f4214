"""One session per maildrop across replicas (RFC 1939 §8, RFC 2449 [IN-USE]): a Redis lock with a token,
renewed while the session lives, released on QUIT or disconnect, expiring if its replica dies."""

import poplib
import time
from collections.abc import Callable

import pytest
import redis

from services.pop3.lock import lock_key
from tests.integration.pop3.clients import RawClient
from tests.integration.pop3.conftest import PASSWORD, Pop3Server, Pop3Site

IN_USE = b"-ERR [IN-USE] Mailbox is in use by another POP3 session"


def refused_with(server: Pop3Server, user: str) -> bytes:
    client = server.connect()
    client.user(user)
    with pytest.raises(poplib.error_proto) as refused:
        client.pass_(PASSWORD)
    client.quit()
    return refused.value.args[0]


def wait_for_login(server: Pop3Server, user: str, timeout: float = 15.0) -> poplib.POP3:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return server.login(user)
        except poplib.error_proto as exc:
            if time.monotonic() > deadline or b"[IN-USE]" not in exc.args[0]:
                raise
            time.sleep(0.1)


def test_second_session_is_refused_on_any_replica(
    site: Pop3Site, pop3: Pop3Server, user: str, start_pop3: Callable[..., Pop3Server]
) -> None:
    site.deliver(user, b"Subject: x\r\n\r\nx\r\n")
    other_replica = start_pop3()
    first = pop3.login(user)

    assert refused_with(pop3, user) == IN_USE
    assert refused_with(other_replica, user) == IN_USE
    assert first.stat() == (1, 17)  # the first session is not disturbed
    first.quit()

    second = other_replica.login(user)  # QUIT released the lock at once
    second.quit()


def test_lock_is_renewed_while_the_session_lives(
    site: Pop3Site, user: str, start_pop3: Callable[..., Pop3Server]
) -> None:
    # Renewed every 500 ms: a second of slack for a busy machine's scheduling before the lock expires.
    server = start_pop3(YUBIN_POP3_LOCK_TTL_MS="1500")
    r = redis.Redis.from_url(site.redis_url)
    first = server.login(user)
    token = r.get(lock_key(user))
    assert token is not None and 0 < r.pttl(lock_key(user)) <= 1500

    time.sleep(3.5)  # well past the TTL: only renewal keeps it

    assert r.get(lock_key(user)) == token
    assert refused_with(server, user) == IN_USE
    first.quit()
    assert r.get(lock_key(user)) is None
    r.close()


def test_dropped_connection_releases_the_lock(pop3: Pop3Server, user: str) -> None:
    first = pop3.login(user)
    first.close()  # no QUIT
    wait_for_login(pop3, user, timeout=5).quit()


def test_lock_of_a_killed_replica_expires(
    site: Pop3Site, pop3: Pop3Server, user: str, start_pop3: Callable[..., Pop3Server]
) -> None:
    doomed = start_pop3()
    client = doomed.login(user)
    doomed.process.kill()  # SIGKILL: no release
    client.sock.close()

    assert refused_with(pop3, user) == IN_USE
    wait_for_login(pop3, user).quit()  # after the TTL (3 s here) the other replica serves the user


def test_someone_elses_lock_is_never_released(site: Pop3Site, pop3: Pop3Server, user: str) -> None:
    """A session that finds the lock taken must leave the holder's lock alone (compare-and-delete)."""
    r = redis.Redis.from_url(site.redis_url)
    r.set(lock_key(user), b"held-by-someone-else", px=10_000)
    assert refused_with(pop3, user) == IN_USE
    assert r.get(lock_key(user)) == b"held-by-someone-else"
    r.delete(lock_key(user))
    r.close()


def test_session_that_lost_its_lock_deletes_nothing(site: Pop3Site, pop3: Pop3Server, user: str) -> None:
    """If the lock expired and someone else holds it now, QUIT must not change the maildrop under them."""
    site.deliver(user, b"Subject: x\r\n\r\nx\r\n")
    r = redis.Redis.from_url(site.redis_url)
    client = RawClient(pop3.host, pop3.port)
    client.command(f"USER {user}")
    assert client.command(f"PASS {PASSWORD}").startswith(b"+OK")
    r.set(lock_key(user), b"another-session", px=10_000)  # as if ours expired and another took it

    client.send(b"DELE 1\r\nQUIT\r\n")
    answers = []
    while line := client.line():
        answers.append(line)

    assert b"-ERR [SYS/TEMP] Mailbox lock lost, no messages deleted, closing connection" in answers
    assert len(site.files(user, "new")) == 1
    assert r.get(lock_key(user)) == b"another-session"
    r.close()


def test_session_waiting_for_a_command_ends_when_its_lock_is_taken(
    site: Pop3Site, pop3: Pop3Server, user: str
) -> None:
    """The lock's renewal finds it taken while the client is silent: the session says so and ends at once,
    without waiting for the client's next command or the idle timeout."""
    site.deliver(user, b"Subject: x\r\n\r\nx\r\n")
    r = redis.Redis.from_url(site.redis_url)
    client = RawClient(pop3.host, pop3.port, timeout=30)
    client.command(f"USER {user}")
    assert client.command(f"PASS {PASSWORD}").startswith(b"+OK")
    r.set(lock_key(user), b"another-session", px=30_000)  # renewed every second (TTL 3 s): noticed soon

    assert client.line() == b"-ERR [SYS/TEMP] Mailbox lock lost, no messages deleted, closing connection"
    assert client.line() == b""  # closed
    assert len(site.files(user, "new")) == 1
    r.delete(lock_key(user))
    r.close()
