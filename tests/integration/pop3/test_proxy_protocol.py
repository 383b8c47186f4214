"""POP3 behind a real HAProxy sending PROXY v2 (issue 13 §1): the per-address cap and login throttling see
the client behind the front, not the front; only the trusted front may send a header, and it must.

HAProxy connects from 127.0.0.10 (`tests.fixtures.haproxy.FRONT_ADDRESS`), the server trusts exactly that,
and the clients connect from 127.0.0.2, .3 ... (to HAProxy, or straight to the server).
"""

import socket
from collections.abc import Callable, Iterator

import pytest

from services.pop3 import responses as R
from shared.proxy_protocol import encode
from tests.fixtures.haproxy import FRONT_ADDRESS, HOST, Haproxy
from tests.integration.pop3.clients import RawClient
from tests.integration.pop3.conftest import PAIR_FREE_FAILURES, PASSWORD, Pop3Server

BEHIND_FRONT = {"YUBIN_PROXY_PROTOCOL_FROM": FRONT_ADDRESS}


@pytest.fixture
def opened() -> Iterator[list[RawClient]]:
    clients: list[RawClient] = []
    yield clients
    for client in clients:
        client.close()


def front_of(haproxy: Callable[..., Haproxy], server: Pop3Server) -> Pop3Server:
    """The same server as reached through HAProxy."""
    port = haproxy([(server.host, server.port)]).port(server.port)
    return Pop3Server(server.process, port, HOST)


def test_per_address_cap_counts_the_client_not_the_front(
    start_pop3: Callable[..., Pop3Server], haproxy: Callable[..., Haproxy], opened: list[RawClient]
) -> None:
    front = front_of(haproxy, start_pop3(YUBIN_POP3_MAX_CONNECTIONS_PER_IP="1", **BEHIND_FRONT))
    opened.append(RawClient(front.host, front.port, source="127.0.0.2"))
    assert opened[-1].greeting == R.GREETING.encode()
    opened.append(RawClient(front.host, front.port, source="127.0.0.2"))
    assert opened[-1].greeting == R.ERR_TOO_MANY_CONNECTIONS.encode()
    opened.append(RawClient(front.host, front.port, source="127.0.0.3"))
    assert opened[-1].greeting == R.GREETING.encode()


def test_login_throttling_sees_the_client_behind_the_front(
    start_pop3: Callable[..., Pop3Server], haproxy: Callable[..., Haproxy], user: str
) -> None:
    """A guesser behind the front is delayed; the user, from another address behind the same front, is not."""
    front = front_of(haproxy, start_pop3(**BEHIND_FRONT))

    def attempt(password: str, source: str) -> bytes:
        client = RawClient(front.host, front.port, source=source)
        client.command(f"USER {user}")
        answer = client.command(f"PASS {password}")
        client.close()
        return answer

    for _ in range(PAIR_FREE_FAILURES):
        assert attempt("wrong-password", "127.0.0.2") == b"-ERR [AUTH] Authentication failed"
    assert attempt(PASSWORD, "127.0.0.2") == R.ERR_THROTTLED.encode()
    assert attempt(PASSWORD, "127.0.0.3").startswith(b"+OK Logged in")


def test_a_proxy_header_from_an_address_that_is_not_a_front_is_refused(
    start_pop3: Callable[..., Pop3Server],
) -> None:
    server = start_pop3(**BEHIND_FRONT)
    spoofer = RawClient(server.host, server.port, source="127.0.0.4")
    assert spoofer.greeting == R.GREETING.encode()  # a direct client is served as before...
    spoofer.send(encode(("192.0.2.66", 4000)) + b"CAPA\r\n")
    assert spoofer.closed()  # ...but one that claims another's address is closed, unanswered
    spoofer.close()
    server.process.wait_for_log("PROXY header from an address that is not a trusted front")
    direct = RawClient(server.host, server.port, source="127.0.0.4")
    assert direct.command("NOOP").startswith(b"-ERR")  # served: a NOOP before login is a wrong-state error
    direct.close()


def test_the_trusted_front_must_send_a_header(start_pop3: Callable[..., Pop3Server]) -> None:
    server = start_pop3(**BEHIND_FRONT)
    with socket.create_connection(
        (server.host, server.port), timeout=10, source_address=(FRONT_ADDRESS, 0)
    ) as sock:
        sock.sendall(b"USER someone@alpha.test\r\n")
        assert sock.makefile("rb").read() == b""  # closed without a greeting
    server.process.wait_for_log("bad PROXY header")


def test_a_local_header_from_the_front_is_served_as_the_front(start_pop3: Callable[..., Pop3Server]) -> None:
    """LOCAL (HAProxy's health checks, §2.2): greeted, and counted as the front's own connection."""
    server = start_pop3(YUBIN_POP3_MAX_CONNECTIONS_PER_IP="1", **BEHIND_FRONT)
    with socket.create_connection(
        (server.host, server.port), timeout=10, source_address=(FRONT_ADDRESS, 0)
    ) as one:
        one.sendall(encode(None))
        replies = one.makefile("rb")
        assert replies.readline() == R.GREETING.encode() + b"\r\n"
        one.sendall(b"CAPA\r\n")  # the session starts after the header: none of it was taken as commands
        assert replies.readline() == b"+OK Capability list follows\r\n"
        with socket.create_connection(
            (server.host, server.port), timeout=10, source_address=(FRONT_ADDRESS, 0)
        ) as two:
            two.sendall(encode(None))
            assert two.makefile("rb").readline() == R.ERR_TOO_MANY_CONNECTIONS.encode() + b"\r\n"
