"""Reading one protocol line from a StreamReader, with the line length bounded by the reader's limit.

Used by POP3 for every command and by SMTP for AUTH's responses. A longer line is read on to its end and
dropped, so what follows it is never taken for the next line (a tail that arrives in a later TCP segment
than the head included).
"""

import asyncio


class LineTooLong(Exception):
    """A line longer than the reader's limit arrived; it was read and thrown away."""


class ConnectionClosed(Exception):
    """The client closed the connection (possibly in the middle of a line)."""


async def read_line(reader: asyncio.StreamReader) -> bytes:
    """One line including its line break. The reader's `limit` bounds the length: a longer line is
    discarded up to and including its line break and reported as `LineTooLong`, so the session can
    answer with an error and go on with the next line."""
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
