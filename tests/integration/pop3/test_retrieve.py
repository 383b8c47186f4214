"""Retrieving messages with real clients (poplib, curl, mpop): exact bytes, sizes, UIDLs, TOP."""

import base64
import os
from collections.abc import Callable
from pathlib import Path

from tests.integration.pop3.clients import curl, mpop
from tests.integration.pop3.conftest import PASSWORD, Pop3Server, Pop3Site

UTF8_MESSAGE = (
    "From: Änne <ann@alpha.test>\r\n"
    "To: bob@alpha.test\r\n"
    "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Grüße aus Köln, 郵便 ✉ — ça va?\r\n"
    ".a line starting with a dot\r\n"
    "..and one with two\r\n"
    ".\r\n"
    "the end\r\n"
).encode()


def big_message() -> bytes:
    """A message with a 1 MB base64 attachment (76-character lines, as MIME writes them)."""
    payload = base64.encodebytes(os.urandom(1024 * 1024)).replace(b"\n", b"\r\n")
    return (
        b"From: ann@alpha.test\r\nTo: bob@alpha.test\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n'
        b".hi\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + payload
        + b"--b--\r\n"
    )


def poplib_retr(pop3: Pop3Server, user: str, number: int) -> tuple[bytes, int]:
    """(the message as poplib reassembles it with CRLF, the octet count the server announced)."""
    client = pop3.login(user)
    try:
        response, lines, _ = client.retr(number)
        return b"".join(line + b"\r\n" for line in lines), int(response.split()[1])
    finally:
        client.quit()


def test_utf8_body_exact_bytes_with_poplib(site: Pop3Site, pop3: Pop3Server, user: str) -> None:
    site.deliver(user, UTF8_MESSAGE)
    client = pop3.login(user)
    assert client.stat() == (1, len(UTF8_MESSAGE))
    assert client.list(1) == f"+OK 1 {len(UTF8_MESSAGE)}".encode()
    client.quit()

    assert poplib_retr(pop3, user, 1) == (UTF8_MESSAGE, len(UTF8_MESSAGE))


def test_utf8_body_exact_bytes_with_curl(site: Pop3Site, pop3: Pop3Server, user: str) -> None:
    site.deliver(user, UTF8_MESSAGE)
    result = curl(f"pop3://{pop3.host}:{pop3.port}/1", user, PASSWORD)
    assert result.returncode == 0, result.stderr
    assert result.stdout == UTF8_MESSAGE


def test_big_attachment_exact_bytes_with_poplib_and_curl(site: Pop3Site, pop3: Pop3Server, user: str) -> None:
    message = big_message()
    site.deliver(user, message)
    site.deliver(user, UTF8_MESSAGE)

    assert poplib_retr(pop3, user, 1) == (message, len(message))
    result = curl(f"pop3://{pop3.host}:{pop3.port}/1", user, PASSWORD)
    assert result.returncode == 0, result.stderr
    assert result.stdout == message
    # The listing: LIST without a number
    listing = curl(f"pop3://{pop3.host}:{pop3.port}/", user, PASSWORD)
    assert listing.stdout == f"1 {len(message)}\r\n2 {len(UTF8_MESSAGE)}\r\n".encode()


def test_mpop_fetches_and_deletes_exact_messages(
    site: Pop3Site, pop3: Pop3Server, user: str, tmp_path: Path
) -> None:
    message = big_message()
    site.deliver(user, UTF8_MESSAGE)
    site.deliver(user, message)

    result, fetched = mpop(tmp_path, pop3.port, user, PASSWORD, keep=False)

    assert result.returncode == 0, result.stderr
    # mpop hands the messages to the MDA with LF line endings.
    assert fetched == [UTF8_MESSAGE.replace(b"\r\n", b"\n"), message.replace(b"\r\n", b"\n")]
    assert site.files(user, "new") == site.files(user, "cur") == []


def test_mpop_keeps_messages_and_remembers_uidls(
    site: Pop3Site, pop3: Pop3Server, user: str, tmp_path: Path
) -> None:
    site.deliver(user, UTF8_MESSAGE)
    result, fetched = mpop(tmp_path, pop3.port, user, PASSWORD, keep=True)
    assert result.returncode == 0, result.stderr
    assert len(fetched) == 1

    site.deliver(user, b"Subject: second\r\n\r\nnew one\r\n")
    result, fetched = mpop(tmp_path, pop3.port, user, PASSWORD, keep=True)

    assert result.returncode == 0, result.stderr
    # The second run fetched only the new message: the first one's UIDL was the same.
    assert fetched[1:] == [b"Subject: second\n\nnew one\n"]
    assert len(site.files(user, "cur")) == 2 and site.files(user, "new") == []  # kept, moved to cur/


def test_retr_moves_to_cur_and_uidl_stays_across_sessions_and_replicas(
    site: Pop3Site, pop3: Pop3Server, user: str, start_pop3: Callable[..., Pop3Server]
) -> None:
    site.deliver(user, b"Subject: one\r\n\r\n1\r\n")
    site.deliver(user, b"Subject: two\r\n\r\n2\r\n")
    client = pop3.login(user)
    _, before, _ = client.uidl()
    client.retr(2)
    assert client.uidl(2) == b"+OK " + before[1]  # unchanged within the session, after the move
    client.quit()

    assert len(site.files(user, "new")) == 1
    (moved,) = site.files(user, "cur")
    assert moved.endswith(":2,")

    other_replica = start_pop3()
    client = other_replica.login(user)
    _, after, _ = client.uidl()
    client.quit()
    assert after == before
    assert len({line.split()[1] for line in after}) == 2


def test_top(site: Pop3Site, pop3: Pop3Server, user: str) -> None:
    site.deliver(user, UTF8_MESSAGE)
    client = pop3.login(user)
    header, body = UTF8_MESSAGE.split(b"\r\n\r\n", 1)

    _, lines, _ = client.top(1, 0)
    assert lines == [*header.split(b"\r\n"), b""]
    _, lines, _ = client.top(1, 2)
    assert lines == [*header.split(b"\r\n"), b"", *body.split(b"\r\n")[:2]]
    assert lines[-1] == b".a line starting with a dot"  # un-stuffed by poplib: it was stuffed on the wire

    client.quit()
    assert site.files(user, "cur") == []  # TOP is not a retrieval: the message stays new


def test_empty_maildrop(site: Pop3Site, pop3: Pop3Server, user: str) -> None:
    client = pop3.login(user)  # never got mail: no Maildir at all
    assert client.stat() == (0, 0)
    assert client.list()[1] == []
    assert client.quit().startswith(b"+OK")


def test_streamed_and_whole_reads_send_the_same_bytes(
    site: Pop3Site, pop3: Pop3Server, user: str, start_pop3: Callable[..., Pop3Server]
) -> None:
    """Messages up to YUBIN_POP3_INLINE_READ_MAX_BYTES are read whole, larger ones streamed: with the
    limit at 0 every message takes the streaming path, and RETR and TOP must not tell the difference."""
    site.deliver(user, UTF8_MESSAGE)
    streaming = start_pop3(YUBIN_POP3_INLINE_READ_MAX_BYTES="0")
    answers = []
    for server in (pop3, streaming):
        client = server.login(user)
        answers.append((client.retr(1), client.top(1, 1)))
        client.quit()
    assert answers[0] == answers[1]
    (_, lines, _), _ = answers[0]
    assert b"".join(line + b"\r\n" for line in lines) == UTF8_MESSAGE
