"""The strict DATA reader, fed through a real asyncio.StreamReader."""

import asyncio

import pytest

from services.submission.message_data import (
    ConnectionClosedInData,
    DataProblem,
    MessageData,
    read_message_data,
)

LIMIT = 100


async def read(data: bytes, *, max_size: int = 10_000, eof: bool = True) -> tuple[MessageData, bytes]:
    """Read one message; also return what is left in the stream (the next commands)."""
    reader = asyncio.StreamReader(limit=LIMIT + 1)
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    result = await read_message_data(reader, max_size=max_size, max_line_length=LIMIT)
    return result, await reader.read() if eof else b""


async def test_reads_up_to_the_end_of_data_and_leaves_the_rest() -> None:
    result, rest = await read(b"Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n")
    assert result == MessageData(content=b"Subject: x\r\n\r\nbody\r\n", problem=None)
    assert rest == b"QUIT\r\n"


async def test_empty_message() -> None:
    result, _ = await read(b".\r\n")
    assert result.content == b""


async def test_dot_unstuffing() -> None:
    result, _ = await read(b"..\r\n..x\r\n.y\r\n.\r\n")
    assert result.content == b".\r\n.x\r\ny\r\n"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"a\nb\r\n.\r\n", DataProblem.BARE_LF),
        (b"a\rb\r\n.\r\n", DataProblem.BARE_CR),
        (b"a\r\r\n.\r\n", DataProblem.BARE_CR),
        (b"first\n.\nMAIL FROM:<x@y>\r\n.\r\n", DataProblem.BARE_LF),
        (b"first\r\n.\nMAIL FROM:<x@y>\r\n.\r\n", DataProblem.BARE_LF),
        (b"first\n.\r\nMAIL FROM:<x@y>\r\n.\r\n", DataProblem.BARE_LF),
        (b"first\r\n.\rMAIL FROM:<x@y>\r\n.\r\n", DataProblem.BARE_CR),
    ],
)
async def test_bare_cr_or_lf_refuses_the_whole_message(data: bytes, problem: DataProblem) -> None:
    result, rest = await read(data + b"NEXT\r\n")
    assert result == MessageData(content=None, problem=problem)
    assert rest == b"NEXT\r\n"  # the smuggled "commands" were swallowed as message content


async def test_line_length_limit_counts_crlf_and_allows_one_stuffing_dot() -> None:
    exact = b"x" * (LIMIT - 2) + b"\r\n"
    assert (await read(exact + b"." + exact + b".\r\n"))[0].problem is None
    assert (await read(b"x" + exact + b".\r\n"))[0].problem is DataProblem.LINE_TOO_LONG


async def test_endless_line_is_drained_not_buffered() -> None:
    # Longer than the stream limit: read in pieces; the dot after it is not at a line start.
    data = b"x" * (LIMIT * 50) + b".\r\nstill the same message\r\n.\r\nNEXT\r\n"
    result, rest = await read(data)
    assert result.problem is DataProblem.LINE_TOO_LONG
    assert rest == b"NEXT\r\n"


async def test_too_big() -> None:
    line = b"y" * 50 + b"\r\n"
    assert (await read(line * 10 + b".\r\n", max_size=520))[0].problem is None
    result, rest = await read(line * 11 + b".\r\nNEXT\r\n", max_size=520)
    assert result.problem is DataProblem.TOO_BIG
    assert rest == b"NEXT\r\n"


async def test_connection_closed_before_the_end() -> None:
    with pytest.raises(ConnectionClosedInData):
        await read(b"Subject: x\r\n\r\nno end")
