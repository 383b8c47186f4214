"""Reading the message after DATA, strictly (RFC 5321 §4.1.1.4, §4.5.2, §2.3.8).

Only `<CRLF>.<CRLF>` ends the data. A line is whatever ends in CRLF; a CR or LF anywhere else in it is a
bare CR / bare LF, and the whole message is refused (after reading on to the real end of data, so what
follows is never taken for commands). That closes SMTP smuggling (CVE-2023-51764 and relatives): a
`<LF>.<LF>` or `<LF>.<CRLF>` that some other server would take as the end of one message and the start of
the next is, here, just a bad line inside one refused message. aiosmtpd ≥ 1.4.5 already ends data only at
`<CRLF>.<CRLF>` but keeps bare LFs in the content, which a later hop could misread; we refuse them.
"""

import asyncio
import enum
from collections.abc import Callable
from dataclasses import dataclass

from services.submission import replies
from services.submission.data_budget import Reservation

END_OF_DATA = b".\r\n"
CRLF = b"\r\n"


class DataProblem(enum.Enum):
    TOO_BIG = replies.MESSAGE_TOO_BIG
    LINE_TOO_LONG = replies.LINE_TOO_LONG
    BARE_LF = replies.BARE_LF
    BARE_CR = replies.BARE_CR
    INSUFFICIENT_STORAGE = replies.INSUFFICIENT_STORAGE


@dataclass(frozen=True)
class MessageData:
    """The message as received (dot-unstuffed, CRLF line endings), or the reason it is refused."""

    content: bytes | None
    problem: DataProblem | None


class ConnectionClosedInData(Exception):
    """The client went away before `<CRLF>.<CRLF>`: there is no message and nobody to answer."""


def line_problem(line: bytes, max_line_length: int) -> DataProblem | None:
    """Check one CRLF-terminated line (still dot-stuffed)."""
    text = line[:-2]
    if b"\n" in text:
        return DataProblem.BARE_LF
    if b"\r" in text:
        return DataProblem.BARE_CR
    # A dot-stuffed line may be one octet longer than the line it carries (RFC 5321 §4.5.2).
    allowed = max_line_length + (1 if line.startswith(b".") else 0)
    if len(line) > allowed:
        return DataProblem.LINE_TOO_LONG
    return None


async def read_message_data(
    reader: asyncio.StreamReader,
    *,
    max_size: int,
    max_line_length: int,
    on_progress: Callable[[], None] = lambda: None,
    reservation: Reservation | None = None,
) -> MessageData:
    """Read up to and including `<CRLF>.<CRLF>`; `on_progress` is called per line (idle timer).

    Memory stays bounded: once a problem is found the rest is read and dropped. `reader` must have a
    stream limit a little above `max_line_length`, so an endless line is cut into pieces, not buffered.
    What is kept is covered by `reservation` (the listener's budget) as it grows; when the budget is short
    the message is refused (INSUFFICIENT_STORAGE) and the reservation given back at once.
    """
    lines: list[bytes] = []
    size = 0
    problem: DataProblem | None = None
    mid_line = False  # the previous piece was cut by the stream limit: this one continues a long line
    while True:
        try:
            line = await reader.readuntil(CRLF)
        except asyncio.LimitOverrunError as overrun:
            await reader.readexactly(overrun.consumed)
            problem = problem or DataProblem.LINE_TOO_LONG
            lines.clear()
            if reservation is not None:
                reservation.release()
            mid_line = True
            on_progress()
            continue
        except asyncio.IncompleteReadError as eof:
            raise ConnectionClosedInData from eof
        on_progress()
        if line == END_OF_DATA and not mid_line:
            break
        if mid_line:
            mid_line = False
            continue  # the tail of a line already refused as too long
        if problem is None:
            problem = line_problem(line, max_line_length)
        if problem is None:
            unstuffed = line[1:] if line.startswith(b".") else line
            size += len(unstuffed)
            if size > max_size:
                problem = DataProblem.TOO_BIG
            elif reservation is not None and size > reservation.held and not reservation.cover(size):
                problem = DataProblem.INSUFFICIENT_STORAGE
            else:
                lines.append(unstuffed)
        if problem is not None:
            lines.clear()
            if reservation is not None:
                reservation.release()
    if problem is not None:
        return MessageData(content=None, problem=problem)
    return MessageData(content=b"".join(lines), problem=None)
