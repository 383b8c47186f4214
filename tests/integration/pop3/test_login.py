"""Logging in: USER/PASS, AUTH PLAIN (RFC 5034), STLS (RFC 2595), no plaintext unless allowed, identical
answers for unknown users and wrong passwords, throttling and an unreachable auth service."""

import base64
import poplib
import ssl
from collections.abc import Callable
from pathlib import Path

from tests.fixtures.ports import free_port
from tests.integration.pop3.clients import RawClient, curl, mpop
from tests.integration.pop3.conftest import PAIR_FREE_FAILURES, PASSWORD, Pop3Server, Pop3Site


def plain(user: str, password: str, authzid: str = "") -> str:
    return base64.b64encode(f"{authzid}\0{user}\0{password}".encode()).decode()


def test_auth_plain_with_initial_response_and_continuation(
    site: Pop3Site, pop3: Pop3Server, user: str
) -> None:
    site.deliver(user, b"Subject: x\r\n\r\nhi\r\n")
    client = RawClient(pop3.host, pop3.port)
    assert client.command(f"AUTH PLAIN {plain(user, PASSWORD)}") == b"+OK Logged in, 1 messages (18 octets)"
    assert client.command("QUIT").startswith(b"+OK")

    client = RawClient(pop3.host, pop3.port)
    assert client.command("AUTH PLAIN") == b"+ "
    assert client.command(plain(user, PASSWORD)).startswith(b"+OK Logged in")
    assert client.command("QUIT").startswith(b"+OK")

    client = RawClient(pop3.host, pop3.port)
    assert client.command("AUTH") == b"+OK"
    assert client.multiline() == [b"PLAIN"]
    assert client.command("AUTH PLAIN") == b"+ "
    assert client.command("*") == b"-ERR [AUTH] Authentication cancelled"
    assert client.command("AUTH CRAM-MD5") == b"-ERR [AUTH] Unsupported authentication mechanism"
    assert client.command("AUTH PLAIN !!!") == b"-ERR [AUTH] Invalid base64 data"
    # Someone else's mailbox with one's own password: refused like a wrong password.
    assert client.command(f"AUTH PLAIN {plain(user, PASSWORD, authzid='x@alpha.test')}") == (
        b"-ERR [AUTH] Authentication failed"
    )
    client.close()


def test_auth_plain_with_curl_and_mpop(site: Pop3Site, pop3: Pop3Server, user: str, tmp_path: Path) -> None:
    site.deliver(user, b"Subject: x\r\n\r\nhi\r\n")
    result = curl(f"pop3://{pop3.host}:{pop3.port}/1", user, PASSWORD, "--login-options", "AUTH=PLAIN")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"Subject: x\r\n\r\nhi\r\n"

    result, fetched = mpop(tmp_path, pop3.port, user, PASSWORD, auth="plain")
    assert result.returncode == 0, result.stderr
    assert fetched == [b"Subject: x\n\nhi\n"]


def test_unknown_user_and_wrong_password_get_the_same_answer(pop3: Pop3Server, user: str) -> None:
    answers = []
    for name, password in ((user, "wrong-password"), ("nobody@alpha.test", "wrong-password"), ("junk", "x")):
        client = RawClient(pop3.host, pop3.port)
        assert client.command(f"USER {name}") == b"+OK Send your password"
        answers.append(client.command(f"PASS {password}"))
        answers.append(client.command(f"AUTH PLAIN {plain(name, password)}"))
        client.close()
    assert set(answers) == {b"-ERR [AUTH] Authentication failed"}


def test_throttled_logins_get_sys_temp_for_known_and_unknown_users(pop3: Pop3Server, user: str) -> None:
    """The guesser's address is delayed; the user, from another address, gets in: POP3 passes the real
    client address to the auth service."""

    def attempt(name: str, password: str, source: str = "127.0.0.2") -> bytes:
        client = RawClient(pop3.host, pop3.port, source=source)
        client.command(f"USER {name}")
        answer = client.command(f"PASS {password}")
        client.close()
        return answer

    unknown = f"nobody-{user}"
    for _ in range(PAIR_FREE_FAILURES):
        assert attempt(user, "wrong-password") == b"-ERR [AUTH] Authentication failed"
        assert attempt(unknown, "wrong-password") == b"-ERR [AUTH] Authentication failed"
    # Now delayed: even the right password is not checked, and nothing tells the two apart.
    throttled = b"-ERR [SYS/TEMP] Too many failed logins, try again later"
    assert attempt(user, PASSWORD) == throttled
    assert attempt(unknown, PASSWORD) == throttled
    assert attempt(user, PASSWORD, source="127.0.0.3").startswith(b"+OK Logged in")


def test_too_many_failures_on_one_connection_close_it(pop3: Pop3Server, user: str) -> None:
    client = RawClient(pop3.host, pop3.port)
    assert client.command(f"AUTH PLAIN {plain('a@alpha.test', 'x')}") == b"-ERR [AUTH] Authentication failed"
    assert client.command(f"AUTH PLAIN {plain('b@alpha.test', 'x')}") == b"-ERR [AUTH] Authentication failed"
    assert client.command(f"AUTH PLAIN {plain('c@alpha.test', 'x')}") == (
        b"-ERR [AUTH] Too many failed logins, closing connection"
    )
    assert client.closed()


def test_pass_needs_user_first(pop3: Pop3Server) -> None:
    client = RawClient(pop3.host, pop3.port)
    assert client.command("PASS secret") == b"-ERR Send USER first"
    client.close()


def test_plaintext_refused_until_stls(
    site: Pop3Site, user: str, start_pop3: Callable[..., Pop3Server]
) -> None:
    strict = start_pop3(YUBIN_POP3_ALLOW_PLAINTEXT_AUTH="false")
    client = RawClient(strict.host, strict.port)
    assert client.command("CAPA") == b"+OK Capability list follows"
    capabilities = client.multiline()
    assert b"STLS" in capabilities
    assert b"USER" not in capabilities and b"SASL PLAIN" not in capabilities
    refused = b"-ERR [AUTH] Plaintext authentication disallowed on non-secure connections, use STLS"
    assert client.command(f"USER {user}") == refused
    assert client.command(f"PASS {PASSWORD}") == refused
    assert client.command(f"AUTH PLAIN {plain(user, PASSWORD)}") == refused

    assert client.command("STLS") == b"+OK Begin TLS negotiation"
    client.start_tls(site.tls_cert)
    assert client.command("CAPA") == b"+OK Capability list follows"
    capabilities = client.multiline()
    assert b"USER" in capabilities and b"SASL PLAIN" in capabilities and b"STLS" not in capabilities
    assert client.command("STLS") == b"-ERR TLS already active"
    assert client.command(f"USER {user}") == b"+OK Send your password"
    assert client.command(f"PASS {PASSWORD}").startswith(b"+OK Logged in")
    assert client.command("QUIT").startswith(b"+OK")
    client.close()


def test_stls_with_poplib_curl_and_mpop(
    site: Pop3Site, user: str, start_pop3: Callable[..., Pop3Server], tmp_path: Path
) -> None:
    strict = start_pop3(YUBIN_POP3_ALLOW_PLAINTEXT_AUTH="false")
    site.deliver(user, b"Subject: tls\r\n\r\nsecret\r\n")

    client = strict.connect()
    client.stls(ssl.create_default_context(cafile=str(site.tls_cert)))
    client.user(user)
    client.pass_(PASSWORD)
    assert client.retr(1)[1] == [b"Subject: tls", b"", b"secret"]
    client.quit()

    url = f"pop3://localhost:{strict.port}/1"
    result = curl(url, user, PASSWORD, "--ssl-reqd", "--cacert", str(site.tls_cert))
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"Subject: tls\r\n\r\nsecret\r\n"
    refused = curl(url, user, PASSWORD)  # no TLS: curl cannot log in
    assert refused.returncode != 0

    result, fetched = mpop(tmp_path, strict.port, user, PASSWORD, tls=(site.tls_cert, True))
    assert result.returncode == 0, result.stderr
    assert fetched == [b"Subject: tls\n\nsecret\n"]


def test_commands_sent_before_the_tls_handshake_are_discarded(
    site: Pop3Site, pop3: Pop3Server, user: str
) -> None:
    """Plaintext pipelined after STLS must not be taken as coming from inside TLS (CVE-2011-0411 class)."""
    client = RawClient(pop3.host, pop3.port)
    client.send(b"STLS\r\nUSER injected@alpha.test\r\nCAPA\r\n")
    assert client.line() == b"+OK Begin TLS negotiation"
    client.start_tls(site.tls_cert)
    assert client.command("PASS x") == b"-ERR Send USER first"  # the injected USER was dropped
    assert client.command("NOOP") == b"-ERR Command not valid in this state"  # no CAPA answer queued
    client.close()


def test_stls_not_offered_without_certificate(start_pop3: Callable[..., Pop3Server]) -> None:
    server = start_pop3(YUBIN_POP3_TLS_CERT="", YUBIN_POP3_TLS_KEY="")
    client = RawClient(server.host, server.port)
    assert client.command("CAPA").startswith(b"+OK")
    assert b"STLS" not in client.multiline()
    assert client.command("STLS") == b"-ERR STLS not available"
    client.close()


def test_auth_service_down_is_a_temporary_error(user: str, start_pop3: Callable[..., Pop3Server]) -> None:
    server = start_pop3(YUBIN_AUTH_URL=f"http://127.0.0.1:{free_port()}", YUBIN_AUTH_TIMEOUT_S="1")
    client = server.connect()
    client.user(user)
    try:
        client.pass_(PASSWORD)
        raise AssertionError("login should fail")
    except poplib.error_proto as exc:
        assert exc.args[0] == b"-ERR [SYS/TEMP] Authentication service unavailable, try again later"
    client.quit()
