"""The POP3 wire format (command lines come in through `shared.line_reader`): single-line and dot-stuffed multi-line responses out.

RFC 1939 §3: responses end in CRLF; a multi-line response ends with a line holding only "."; any line that
begins with "." gets another "." in front ("byte-stuffing"). Messages are stored with LF line endings
(`shared.maildir`), so every LF goes out as CRLF. Every response leaves in one write. Small messages are
read and encoded whole (`encode_message`); large ones are streamed in chunks (`send_message`): a 10 MB
attachment never sits in memory twice, and a slow client holds back the reading (drain) instead of
filling a buffer.
"""

import asyncio
from collections.abc import Iterable
from typing import BinaryIO

CRLF = b"\r\n"
END = b".\r\n"
_READ_CHUNK = 64 * 1024


def response(line: str) -> bytes:
    return line.encode("utf-8") + CRLF


def multiline(first: str, lines: Iterable[str]) -> bytes:
    """A complete multi-line response whose lines are ours (CAPA, LIST, UIDL): never start with '.'."""
    return b"".join([response(first), *(response(line) for line in lines), END])


class MessageEncoder:
    """Turns a stored message into its wire form: LF → CRLF and byte-stuffing, optionally only the header
    and the first `body_lines` lines of the body (TOP, RFC 1939 §7).

    Works on whole chunks with `bytes.replace` (no per-line Python loop); the only state carried across
    chunk boundaries is whether the last octet sent ended a line (a "." starting the next chunk then
    starts a line too) and, for TOP, where the header ends and how many body lines are left.
    """

    def __init__(self, body_lines: int | None = None) -> None:
        self._at_line_start = True  # the next octet begins a line
        self._in_header = True
        self._body_left = body_lines  # line breaks still to send after the header (TOP), None: all
        self.done = False

    def feed(self, chunk: bytes) -> bytes:
        if self.done or not chunk:
            return b""
        if self._body_left is not None:
            chunk = self._cut(chunk)
            if not chunk:
                return b""
        # "\n." → "\n..": the inserted dot never forms a new "\n." (it follows a dot), so one pass is exact.
        stuffed = chunk.replace(b"\n.", b"\n..").replace(b"\n", b"\r\n")
        if self._at_line_start and chunk[:1] == b".":
            stuffed = b"." + stuffed
        self._at_line_start = chunk[-1:] == b"\n"
        return stuffed

    def finish(self) -> bytes:
        """Complete a last line without a line break, then the terminating ".": the terminator must start
        a line (RFC 1939 §3)."""
        return END if self._at_line_start else CRLF + END

    def _cut(self, chunk: bytes) -> bytes:
        """TOP: the part of `chunk` still to send; sets `done` once the last body line is in it."""
        assert self._body_left is not None
        start = 0
        if self._in_header:
            # The header ends with the first empty line: a line break at the start of a line.
            if self._at_line_start and chunk[:1] == b"\n":
                start = 1
            else:
                found = chunk.find(b"\n\n")
                if found < 0:
                    return chunk  # all header so far
                start = found + 2
            self._in_header = False
        end = start
        while self._body_left > 0:
            found = chunk.find(b"\n", end)
            if found < 0:
                self._body_left -= chunk.count(b"\n", end)  # 0: a line continued in the next chunk
                return chunk
            self._body_left -= 1
            end = found + 1
        self.done = True
        return chunk[:end]


def encode_message(stored: bytes, body_lines: int | None = None) -> bytes:
    """A whole stored message in its wire form, terminator included (for messages read in one go)."""
    encoder = MessageEncoder(body_lines)
    return encoder.feed(stored) + encoder.finish()


async def drain(writer: asyncio.StreamWriter, within_s: float) -> None:
    """Wait until the transport's buffer is back under its limit; at most `within_s` (TimeoutError).

    Usually the kernel took the whole answer at once and the buffer is empty: then there is nothing to
    wait for, and no timer to set up, which matters when every RETR and DELE passes here.
    """
    if writer.transport.get_write_buffer_size() == 0 and not writer.transport.is_closing():
        return
    async with asyncio.timeout(within_s):
        await writer.drain()


async def send_message(
    writer: asyncio.StreamWriter,
    file: BinaryIO,
    first: str,
    body_lines: int | None = None,
    *,
    drain_timeout: float,
) -> None:
    """Stream `first` (the +OK line), the message from the open `file`, and the terminating ".", reading
    in a worker thread: for messages too large to read in one go on the event loop.

    A client that stops reading for `drain_timeout` raises TimeoutError: it must not hold the connection
    (and the maildrop lock) forever."""
    encoder = MessageEncoder(body_lines)
    pending = response(first)
    while not encoder.done:
        chunk = await asyncio.to_thread(file.read, _READ_CHUNK)
        if not chunk:
            break
        writer.write(pending + encoder.feed(chunk))
        pending = b""
        await drain(writer, drain_timeout)
    writer.write(pending + encoder.finish())
    await drain(writer, drain_timeout)
