"""The POP3 wire format: command lines in; single-line and dot-stuffed multi-line responses out.

RFC 1939 §3: responses end in CRLF; a multi-line response ends with a line holding only "."; any line that
begins with "." gets another "." in front ("byte-stuffing"). Messages are stored with LF line endings
(`shared.maildir`), so every LF goes out as CRLF. Messages are streamed in chunks: a 1 MB attachment never
sits in memory twice, and a slow client holds back the reading (drain) instead of filling a buffer.
"""

import asyncio
from collections.abc import Iterable
from typing import BinaryIO

CRLF = b"\r\n"
END = b".\r\n"
_READ_CHUNK = 64 * 1024


class LineTooLong(Exception):
    """A line longer than the reader's limit arrived; it was read and thrown away."""


class ConnectionClosed(Exception):
    """The client closed the connection (possibly in the middle of a line)."""


async def read_line(reader: asyncio.StreamReader) -> bytes:
    """One line including its line break. The reader's `limit` bounds the length: a longer line is
    discarded up to and including its line break and reported as `LineTooLong`, so the session can
    answer -ERR and go on with the next line."""
    try:
        return await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        raise ConnectionClosed from exc
    except asyncio.LimitOverrunError as exc:
        await _discard_line(reader, exc.consumed)
        raise LineTooLong from None


async def _discard_line(reader: asyncio.StreamReader, consumed: int) -> None:
    while True:
        try:
            await reader.readexactly(consumed)
            await reader.readuntil(b"\n")
            return
        except asyncio.IncompleteReadError as exc:
            raise ConnectionClosed from exc
        except asyncio.LimitOverrunError as exc:
            consumed = exc.consumed


def response(line: str) -> bytes:
    return line.encode("utf-8") + CRLF


def multiline(first: str, lines: Iterable[str]) -> bytes:
    """A complete multi-line response whose lines are ours (CAPA, LIST, UIDL): never start with '.'."""
    return b"".join([response(first), *(response(line) for line in lines), END])


class MessageEncoder:
    """Turns a stored message into wire lines: LF → CRLF, byte-stuffing, optionally only the header and
    the first `body_lines` lines of the body (TOP, RFC 1939 §7)."""

    def __init__(self, body_lines: int | None = None) -> None:
        self._partial: list[bytes] = []
        self._in_header = True
        self._body_left = body_lines
        self.done = False

    def feed(self, chunk: bytes) -> bytes:
        parts = chunk.split(b"\n")
        if len(parts) == 1:
            self._partial.append(chunk)  # no line break yet: join once it comes (no quadratic copying)
            return b""
        first = b"".join([*self._partial, parts[0]])
        self._partial = [parts[-1]]
        out = bytearray()
        for line in [first, *parts[1:-1]]:
            if not self._encode(line, out):
                break
        return bytes(out)

    def finish(self) -> bytes:
        """The last line if the file does not end with a line break, then the terminating ".": the
        terminator must start a line (RFC 1939 §3)."""
        out = bytearray()
        rest = b"".join(self._partial)
        if rest and not self.done:
            self._encode(rest, out)
        out += END
        return bytes(out)

    def _encode(self, line: bytes, out: bytearray) -> bool:
        """Append one line; False once TOP has sent all it should."""
        if self.done:
            return False
        if self._body_left is not None and not self._in_header:
            if self._body_left == 0:
                self.done = True
                return False
            self._body_left -= 1
        if self._in_header and line == b"":
            self._in_header = False  # the empty line ending the header is sent, then count body lines
        if line.startswith(b"."):
            out += b"."
        out += line
        out += CRLF
        return True


async def send_message(
    writer: asyncio.StreamWriter,
    file: BinaryIO,
    first: str,
    body_lines: int | None = None,
    *,
    drain_timeout: float,
) -> None:
    """Send `first` (the +OK line), the message from the open `file`, and the terminating ".".

    A client that stops reading for `drain_timeout` raises TimeoutError: it must not hold the connection
    (and the maildrop lock) forever."""
    encoder = MessageEncoder(body_lines)
    writer.write(response(first))
    while not encoder.done:
        chunk = await asyncio.to_thread(file.read, _READ_CHUNK)
        if not chunk:
            break
        writer.write(encoder.feed(chunk))
        await asyncio.wait_for(writer.drain(), drain_timeout)
    writer.write(encoder.finish())
    await asyncio.wait_for(writer.drain(), drain_timeout)
