"""The listener's memory budget for message data, and the DATA reader keeping within it."""

import asyncio

from services.submission.data_budget import STEP, DataBudget, declared_size
from services.submission.message_data import DataProblem, read_message_data


def test_reservations_grow_in_steps_and_give_everything_back() -> None:
    budget = DataBudget(3 * STEP)
    first, second = budget.reservation(), budget.reservation()
    assert first.cover(10) and first.held == STEP
    assert first.cover(STEP) and first.held == STEP  # already covered: nothing more taken
    assert second.cover(STEP + 1) and second.held == STEP + 1  # the last step shrinks to what fits
    assert not first.cover(2 * STEP) and first.held == STEP  # short: keeps what it held
    second.release()
    assert first.cover(2 * STEP) and budget.in_use == 2 * STEP
    first.release()
    assert budget.in_use == 0


def test_declared_size() -> None:
    assert declared_size(["BODY=8BITMIME", "SIZE=12345"]) == 12345
    assert declared_size(["size=7"]) == 7
    assert declared_size(["BODY=8BITMIME"]) is None


async def test_data_over_the_budget_is_refused_and_its_reservation_given_back() -> None:
    budget = DataBudget(2 * STEP)
    other = budget.reservation()
    assert other.cover(STEP + STEP // 2)  # another session holds most of the budget
    reader = asyncio.StreamReader(limit=1001)
    line = b"x" * 98 + b"\r\n"
    reader.feed_data(line * (STEP // 100) + b".\r\nQUIT\r\n")
    reader.feed_eof()
    reservation = budget.reservation()
    result = await read_message_data(
        reader, max_size=10 * STEP, max_line_length=1000, reservation=reservation
    )
    assert result.problem is DataProblem.INSUFFICIENT_STORAGE and result.content is None
    assert reservation.held == 0 and budget.in_use == other.held
    assert await reader.read() == b"QUIT\r\n"  # read on to the end of data, nothing taken for commands
