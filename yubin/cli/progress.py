"""Progress of long transfers on stderr (only when stderr is a terminal, so scripts get clean output)."""

import sys
import time
from typing import TextIO


class Progress:
    def __init__(
        self, label: str, total: int, stream: TextIO = sys.stderr, enabled: bool | None = None
    ) -> None:
        self.label = label
        self.total = max(total, 1)
        self.stream = stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self.done = 0
        self.started = time.monotonic()
        self._last_draw = 0.0

    def advance(self, amount: int) -> None:
        self.done += amount
        now = time.monotonic()
        if self.enabled and (now - self._last_draw > 0.1 or self.done >= self.total):
            self._last_draw = now
            percent = 100 * self.done / self.total
            self.stream.write(f"\r{self.label}: {human(self.done)} / {human(self.total)} ({percent:3.0f}%)")
            self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            elapsed = time.monotonic() - self.started
            self.stream.write(f"\r{self.label}: {human(self.done)} in {elapsed:.1f} s{' ' * 20}\n")
            self.stream.flush()


def human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
