"""The protocol around the messages: CAPA, commands in the wrong state, pipelining, bounded input (garbage
and long lines close only the offending connection), idle timeout, connection limits, SIGTERM."""

import socket
import time
from collections.abc import Callable

from tests.integration.pop3.clients import RawClient
from tests.integration.pop3.conftest import PASSWORD, Pop3Server, Pop3Site

WRONG_STATE = b"-ERR Command not valid in this state"


def logged_in(server: Pop3Server, user: str) -> RawClient:
    client = RawClient(server.host, server.port)
    assert client.command(f"USER {user}").startswith(b"+OK")
    assert client.command(f"PASS {PASSWORD}").startswith(b"+OK Logged in")
    return client


def test_capa_in_each_state(pop3: Pop3Server, user: str) -> None:
    client = RawClient(pop3.host, pop3.port)
    assert client.greeting == b"+OK Yubin POP3 server ready"  # no APOP timestamp: APOP is not offered
    assert client.command("CAPA") == b"+OK Capability list follows"
    assert client.multiline() == [
        b"TOP", b"UIDL", b"RESP-CODES", b"AUTH-RESP-CODE", b"PIPELINING",
        b"USER", b"SASL PLAIN", b"STLS", b"IMPLEMENTATION Yubin",
    ]  # fmt: skip
    client.command(f"USER {user}")
    client.command(f"PASS {PASSWORD}")
    assert client.command("capa") == b"+OK Capability list follows"  # commands are case-insensitive
    assert client.multiline() == [
        b"TOP",
        b"UIDL",
        b"RESP-CODES",
        b"AUTH-RESP-CODE",
        b"PIPELINING",
        b"IMPLEMENTATION Yubin",
    ]
    client.close()


def test_commands_in_the_wrong_state(pop3: Pop3Server, user: str) -> None:
    client = RawClient(pop3.host, pop3.port)
    for command in ("STAT", "LIST", "UIDL", "RETR 1", "TOP 1 0", "DELE 1", "RSET", "NOOP"):
        assert client.command(command) == WRONG_STATE, command
    assert client.command("APOP bob 0123456789abcdef0123456789abcdef") == b"-ERR Unknown command"
    client.close()

    client = logged_in(pop3, user)
    for command in (f"USER {user}", "PASS x", "AUTH PLAIN", "STLS"):
        assert client.command(command) == WRONG_STATE, command
    assert client.command("NOOP") == b"+OK"
    assert client.command("QUIT").startswith(b"+OK")
    assert client.closed()


def test_pipelined_commands_are_answered_in_order(site: Pop3Site, pop3: Pop3Server, user: str) -> None:
    site.deliver(user, b"Subject: a\r\n\r\n.dot\r\n")
    site.deliver(user, b"Subject: b\r\n\r\nb\r\n")
    client = RawClient(pop3.host, pop3.port)
    client.send(
        f"CAPA\r\nUSER {user}\r\nPASS {PASSWORD}\r\nSTAT\r\nLIST\r\nRETR 1\r\nDELE 2\r\nUIDL 2\r\nRSET\r\n"
        "NOOP\r\nQUIT\r\n".encode()
    )
    assert client.line().startswith(b"+OK Capability")
    assert b"PIPELINING" in client.multiline()
    assert client.line() == b"+OK Send your password"
    assert client.line() == b"+OK Logged in, 2 messages (37 octets)"
    assert client.line() == b"+OK 2 37"
    assert client.line() == b"+OK 2 messages (37 octets)"
    assert client.multiline() == [b"1 20", b"2 17"]
    assert client.line() == b"+OK 20 octets"
    assert client.multiline() == [b"Subject: a", b"", b".dot"]
    assert client.line() == b"+OK Message 2 deleted"
    assert client.line() == b"-ERR Message is deleted"
    assert client.line() == b"+OK Maildrop has 2 messages (37 octets)"
    assert client.line() == b"+OK"
    assert client.line() == b"+OK Yubin POP3 server signing off (0 messages deleted)"
    assert client.closed()


def test_garbage_closes_only_the_offending_connection(site: Pop3Site, pop3: Pop3Server, user: str) -> None:
    site.deliver(user, b"Subject: a\r\n\r\na\r\n")
    good = logged_in(pop3, user)
    bad = RawClient(pop3.host, pop3.port)
    assert bad.command("X" * 300) == b"-ERR Line too long"  # RFC 2449: 255 octets with CRLF
    bad.send(b"Y" * 100_000 + b"\r\n")  # far beyond any buffer: read and thrown away
    assert bad.line() == b"-ERR Line too long"
    bad.send(b"\xff\xfe\x00garbage\r\n")
    assert bad.line() == b"-ERR Unknown command"
    for _ in range(6):
        assert bad.command("HELO there") == b"-ERR Unknown command"
    assert bad.command("GET / HTTP/1.0") == b"-ERR Too many bad commands, closing connection"
    assert bad.closed()

    assert good.command("STAT") == b"+OK 1 17"
    assert good.command("QUIT").startswith(b"+OK")


def test_commands_before_login_are_bounded(user: str, start_pop3: Callable[..., Pop3Server]) -> None:
    server = start_pop3(YUBIN_POP3_MAX_AUTH_COMMANDS="4")
    client = RawClient(server.host, server.port)
    for _ in range(4):
        assert client.command("CAPA").startswith(b"+OK")
        client.multiline()
    assert client.command("CAPA") == b"-ERR Too many commands without logging in, closing connection"
    assert client.closed()


def test_idle_session_is_logged_out_without_update(
    site: Pop3Site, user: str, start_pop3: Callable[..., Pop3Server]
) -> None:
    site.deliver(user, b"Subject: a\r\n\r\na\r\n")
    server = start_pop3(YUBIN_POP3_IDLE_TIMEOUT_S="0.5")
    client = logged_in(server, user)
    assert client.command("DELE 1").startswith(b"+OK")
    assert client.line() == b"-ERR Autologout; idle for too long"  # then nothing more
    assert client.closed()
    assert len(site.files(user, "new")) == 1


def connect_when_free(server: Pop3Server) -> RawClient:
    """A connection once a slot is free (closed connections free theirs as soon as the server sees EOF)."""
    deadline = time.monotonic() + 5
    while (client := RawClient(server.host, server.port)).greeting.startswith(b"-ERR"):
        client.close()
        assert time.monotonic() < deadline, "no connection slot became free"
        time.sleep(0.05)
    return client


def test_connection_limit_per_client(user: str, start_pop3: Callable[..., Pop3Server]) -> None:
    server = start_pop3(YUBIN_POP3_MAX_CONNECTIONS_PER_IP="2")
    first, second = connect_when_free(server), connect_when_free(server)
    third = RawClient(server.host, server.port)
    assert third.greeting == b"-ERR [SYS/TEMP] Too many connections, try again later"
    assert third.closed()
    assert first.command("QUIT").startswith(b"+OK")
    assert first.closed()
    again = connect_when_free(server)
    assert again.command("NOOP") == WRONG_STATE
    second.close()


def test_a_flood_from_one_address_leaves_room_for_the_others(start_pop3: Callable[..., Pop3Server]) -> None:
    """The SMTP listeners' scenario (issue 9 §3) with POP3's defaults: 20 idle connections from one address,
    the 21st refused, and a client at another address is served at once."""
    server = start_pop3()
    flood = [RawClient(server.host, server.port, source="127.0.0.2") for _ in range(20)]
    try:
        assert all(client.greeting.startswith(b"+OK") for client in flood)
        refused = RawClient(server.host, server.port, source="127.0.0.2")
        assert refused.greeting == b"-ERR [SYS/TEMP] Too many connections, try again later"
        assert refused.closed()
        other = RawClient(server.host, server.port, source="127.0.0.3")
        assert other.greeting.startswith(b"+OK")
        assert other.command("QUIT").startswith(b"+OK")
    finally:
        for client in flood:
            client.close()


def test_sigterm_ends_sessions_without_update_and_exits_0(
    site: Pop3Site, user: str, start_pop3: Callable[..., Pop3Server]
) -> None:
    site.deliver(user, b"Subject: a\r\n\r\na\r\n")
    server = start_pop3()
    client = logged_in(server, user)
    assert client.command("DELE 1").startswith(b"+OK")

    assert server.process.stop() == 0

    assert client.line() == b"-ERR [SYS/TEMP] Server shutting down, try again later"
    assert client.closed()
    assert len(site.files(user, "new")) == 1
    try:
        socket.create_connection((server.host, server.port), timeout=2).close()
        raise AssertionError("still listening")
    except OSError:
        pass


def test_client_that_stops_reading_does_not_keep_the_maildrop(
    site: Pop3Site, user: str, start_pop3: Callable[..., Pop3Server]
) -> None:
    # Bigger than what the socket buffers on both sides absorb, so the server really waits to write.
    site.deliver(user, b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 12_000)
    server = start_pop3(YUBIN_POP3_IDLE_TIMEOUT_S="0.5")
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect((server.host, server.port))
    stuck.sendall(f"USER {user}\r\nPASS {PASSWORD}\r\nRETR 1\r\n".encode())  # and never read

    deadline = time.monotonic() + 10
    while True:  # the stuck session is dropped, its lock released, and the user can log in again
        client = RawClient(server.host, server.port)
        client.command(f"USER {user}")
        if client.command(f"PASS {PASSWORD}").startswith(b"+OK"):
            break
        client.close()
        assert time.monotonic() < deadline, "the stuck session kept the maildrop"
        time.sleep(0.1)
    assert client.command("STAT").startswith(b"+OK 1 ")
    client.close()
    stuck.close()
