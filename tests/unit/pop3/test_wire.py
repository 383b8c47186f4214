"""The wire format: stored messages out as CRLF with byte-stuffing, TOP cut-offs, bounded command lines."""

import asyncio
import random

import pytest

from services.pop3.wire import MessageEncoder, encode_message, multiline
from shared.line_reader import ConnectionClosed, LineTooLong, read_line
from shared.maildir import to_disk, wire_size

MESSAGE = b"Subject: t\r\nX: y\r\n\r\nline 1\r\n.starts with a dot\r\n..two dots\r\nline 4\r\n.\r\nlast\r\n"


def encode(stored: bytes, body_lines: int | None = None, chunk: int | None = None) -> bytes:
    encoder = MessageEncoder(body_lines)
    step = chunk or max(len(stored), 1)
    out = b"".join(encoder.feed(stored[i : i + step]) for i in range(0, len(stored), step))
    return out + encoder.finish()


def unstuff(wire: bytes) -> bytes:
    """What a client makes of it (RFC 1939 §3): drop the final '.', remove one leading '.' per line."""
    assert wire.endswith(b"\r\n.\r\n") or wire == b".\r\n"
    lines = wire[: -len(b".\r\n")].split(b"\r\n")[:-1]
    return b"".join((line[1:] if line.startswith(b".") else line) + b"\r\n" for line in lines)


def test_stored_message_goes_out_as_received_with_dots_stuffed() -> None:
    wire = encode(to_disk(MESSAGE))
    assert b"\r\n..starts with a dot\r\n...two dots\r\n" in wire
    assert b"\r\n..\r\nlast\r\n.\r\n" in wire
    assert unstuff(wire) == MESSAGE


def test_size_on_the_wire_is_the_count_before_stuffing() -> None:
    stored = to_disk(MESSAGE)
    assert len(unstuff(encode(stored))) == wire_size(stored)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_chunk_boundaries_do_not_matter(chunk: int) -> None:
    stored = to_disk(MESSAGE)
    assert encode(stored, chunk=chunk) == encode(stored)
    assert encode(stored, 1, chunk=chunk) == encode(stored, 1)


def test_utf8_and_8bit_octets_pass_unchanged() -> None:
    message = "Subject: =?utf-8?q?gr=C3=BC=C3=9Fe?=\r\n\r\nGrüße, 郵便 ✉\r\n".encode() + b"\xff\xfe raw\r\n"
    assert unstuff(encode(to_disk(message))) == message


def test_top_zero_sends_the_header_and_the_blank_line() -> None:
    assert unstuff(encode(to_disk(MESSAGE), 0)) == b"Subject: t\r\nX: y\r\n\r\n"


def test_top_counts_body_lines_before_stuffing() -> None:
    assert (
        unstuff(encode(to_disk(MESSAGE), 2)) == b"Subject: t\r\nX: y\r\n\r\nline 1\r\n.starts with a dot\r\n"
    )


def test_top_beyond_the_end_sends_everything() -> None:
    assert unstuff(encode(to_disk(MESSAGE), 1000)) == MESSAGE


def test_last_line_without_line_break_is_completed_before_the_terminator() -> None:
    assert encode(b"Subject: x\n\nno newline") == b"Subject: x\r\n\r\nno newline\r\n.\r\n"


def test_empty_message() -> None:
    assert encode(b"") == b".\r\n"


def test_multiline_response() -> None:
    assert multiline("+OK", ["1 10", "2 20"]) == b"+OK\r\n1 10\r\n2 20\r\n.\r\n"


async def reader_with(data: bytes, limit: int = 32) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=limit)
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_lines_are_read_one_by_one() -> None:
    reader = await reader_with(b"USER a\r\nPASS b\r\n")
    assert await read_line(reader) == b"USER a\r\n"
    assert await read_line(reader) == b"PASS b\r\n"
    with pytest.raises(ConnectionClosed):
        await read_line(reader)


async def test_an_overlong_line_is_discarded_and_the_next_one_read() -> None:
    reader = await reader_with(b"X" * 200 + b"\r\nNOOP\r\n")
    with pytest.raises(LineTooLong):
        await read_line(reader)
    assert await read_line(reader) == b"NOOP\r\n"


async def test_a_partial_line_at_eof_is_a_closed_connection() -> None:
    with pytest.raises(ConnectionClosed):
        await read_line(await reader_with(b"NOO"))


def reference_encoding(stored: bytes, body_lines: int | None) -> bytes:
    """RFC 1939 §3/§7 spelled out line by line: the slow, obvious version the chunked encoder must match."""
    lines = stored.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the text after the last line break: nothing
    out, in_header, left = [], True, body_lines
    for line in lines:
        if left is not None and not in_header:
            if left == 0:
                break
            left -= 1
        if in_header and line == b"":
            in_header = False
        out.append((b"." + line if line.startswith(b".") else line) + b"\r\n")
    return b"".join(out) + b".\r\n"


@pytest.mark.parametrize("seed", range(40))
def test_chunked_encoding_matches_the_line_by_line_rules(seed: int) -> None:
    rng = random.Random(seed)
    pieces = [b"\n", b".", b"..", b"a", b"Header: v", b"\r", b"\n\n", b"\n.\n", b"x" * 30]
    stored = b"".join(rng.choice(pieces) for _ in range(rng.randrange(0, 60)))
    for body_lines in (None, 0, 1, 2, 5):
        expected = reference_encoding(stored, body_lines)
        assert encode_message(stored, body_lines) == expected, (stored, body_lines)
        for chunk in (1, 2, 3, 5, 8):
            assert encode(stored, body_lines, chunk=chunk) == expected, (stored, body_lines, chunk)
