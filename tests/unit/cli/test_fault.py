"""`yubin lab fault`: its duration argument (the commands against a real API: tests/integration/auth)."""

import argparse

import pytest

from yubin.cli.fault import duration_s


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("2h", 7200)])
def test_cli_durations(text: str, seconds: int) -> None:
    assert duration_s(text) == seconds


@pytest.mark.parametrize("text", ["", "1d", "-5", "1.5m", "m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        duration_s(text)
