"""Deletions happen only in the UPDATE state (RFC 1939 §6): QUIT after DELE removes, RSET or a dropped
connection removes nothing; message numbers that do not exist or are deleted get -ERR."""

import poplib

import pytest

from tests.integration.pop3.clients import RawClient, curl
from tests.integration.pop3.conftest import PASSWORD, Pop3Server, Pop3Site


def deliver_three(site: Pop3Site, user: str) -> None:
    for n in (1, 2, 3):
        site.deliver(user, f"Subject: {n}\r\n\r\nbody {n}\r\n".encode())


def subjects(pop3: Pop3Server, user: str) -> list[bytes]:
    client = pop3.login(user)
    count, _ = client.stat()
    found = [client.top(n, 0)[1][0] for n in range(1, count + 1)]
    client.quit()
    return found


def test_dele_then_quit_removes(site: Pop3Site, pop3: Pop3Server, user: str) -> None:
    deliver_three(site, user)
    client = pop3.login(user)
    client.retr(2)
    assert client.dele(2) == b"+OK Message 2 deleted"
    assert client.dele(3).startswith(b"+OK")
    assert client.stat()[0] == 1
    assert client.list()[1] == [b"1 22"]
    assert client.quit() == b"+OK Yubin POP3 server signing off (2 messages deleted)"

    assert subjects(pop3, user) == [b"Subject: 1"]
    assert len(site.files(user, "new")) == 1 and site.files(user, "cur") == []


def test_dele_then_rset_keeps(site: Pop3Site, pop3: Pop3Server, user: str) -> None:
    deliver_three(site, user)
    client = pop3.login(user)
    client.dele(1)
    client.dele(3)
    assert client.rset() == b"+OK Maildrop has 3 messages (66 octets)"
    assert client.stat() == (3, 66)
    client.quit()

    assert subjects(pop3, user) == [b"Subject: 1", b"Subject: 2", b"Subject: 3"]


def test_dele_then_dropped_connection_keeps(site: Pop3Site, pop3: Pop3Server, user: str) -> None:
    deliver_three(site, user)
    client = pop3.login(user)
    client.dele(1)
    client.dele(2)
    client.close()  # no QUIT: the connection just goes away

    assert subjects(pop3, user) == [b"Subject: 1", b"Subject: 2", b"Subject: 3"]


def test_invalid_and_deleted_message_numbers(site: Pop3Site, pop3: Pop3Server, user: str) -> None:
    deliver_three(site, user)
    client = RawClient(pop3.host, pop3.port)
    client.command(f"USER {user}")
    assert client.command("PASS correct-horse-battery").startswith(b"+OK")
    for command in ("RETR 0", "RETR 4", "LIST 99999999999", "UIDL 4", "TOP 4 0", "DELE 0"):
        assert client.command(command) == b"-ERR No such message", command
    for command in ("RETR x", "RETR -1", "RETR +1", "RETR", "LIST 1 2", "TOP 1", "TOP 1 -1", "TOP 1 x"):
        assert client.command(command) == b"-ERR Syntax error in arguments", command
    assert client.command("DELE 2") == b"+OK Message 2 deleted"
    for command in ("RETR 2", "DELE 2", "LIST 2", "UIDL 2", "TOP 2 1"):
        assert client.command(command) == b"-ERR Message is deleted", command
    # Not too many: the syntax errors above count as bad commands, and the limit is 10.
    assert client.command("STAT") == b"+OK 2 44"
    assert client.command("QUIT").startswith(b"+OK")
    client.close()


def test_poplib_sees_err_for_missing_message(site: Pop3Site, pop3: Pop3Server, user: str) -> None:
    client = pop3.login(user)
    with pytest.raises(poplib.error_proto, match="No such message"):
        client.retr(1)
    client.quit()


def test_curl_dele_uidl_and_top(site: Pop3Site, pop3: Pop3Server, user: str) -> None:
    site.deliver(user, b"Subject: 1\r\n\r\nbody 1\r\n")
    keep = site.deliver(user, b"Subject: 2\r\n\r\nbody 2\r\n")
    url = f"pop3://{pop3.host}:{pop3.port}"

    assert curl(f"{url}/1", user, PASSWORD, "-X", "DELE", "-I").returncode == 0

    assert site.files(user, "new") == [keep.name]
    uidl = curl(f"{url}/", user, PASSWORD, "-X", "UIDL")
    assert uidl.stdout == f"1 {keep.name.split(',')[0]}\r\n".encode()
    assert curl(f"{url}/", user, PASSWORD, "-X", "TOP 1 0").stdout == b"Subject: 2\r\n\r\n"
