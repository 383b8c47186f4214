"""JSON logs on stderr, one object per line, carrying the queue id and Message-ID of the work at hand.

`log_context(queue_id=..., message_id=...)` sets them for everything logged inside it (contextvars, so
concurrent asyncio tasks keep their own). Fields passed with `extra=` are included too.
"""

import atexit
import contextlib
import contextvars
import json
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "yubin_log_context", default=None
)

# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged as a field.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName", "color_message"}


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    token = _context.set({**(_context.get() or {}), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


_encode = json.JSONEncoder(default=str, ensure_ascii=False).encode


def _timestamp(created: float) -> str:
    """ISO 8601 in UTC with milliseconds, as datetime's isoformat writes it (at a third of its cost)."""
    seconds = int(created)
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        + f".{int((created - seconds) * 1000):03d}+00:00"
    )


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        context = _context.get()
        if context:
            out.update(context)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key[0] != "_":
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return _encode(out)


class BatchWriter(logging.Handler):
    """Formats each record where it is logged (so the contextvars of the task at hand are read) and hands
    the line to a writer thread, which writes whatever has gathered in one `write`.

    A slow reader of the output (a process runner, a full pipe) then delays the log, not the event loop
    serving SMTP or POP3 clients. The thread wakes at most every `linger_s` and writes all lines since in
    one system call: under load a few lines per write instead of a queue hand-off, a thread wake-up and
    a write per line (logging's QueueHandler/QueueListener), which cost the busiest services about a
    tenth of their CPU.
    """

    def __init__(self, fd: int, linger_s: float = 0.02) -> None:
        super().__init__()
        self.fd = fd
        self.linger_s = linger_s
        self._lines: deque[str] = deque()  # append and popleft are thread-safe
        self._ready = threading.Event()
        self._flushing = threading.Lock()  # the writer thread and close() at exit: batches stay in order
        self._closed = False
        self._writer = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._writer.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self._lines.append(line)
        if not self._ready.is_set():
            self._ready.set()

    def _run(self) -> None:
        while not self._closed:
            self._ready.wait()
            time.sleep(self.linger_s)  # let the lines of a busy moment gather into one write
            self._ready.clear()
            self.flush()

    def flush(self) -> None:
        with self._flushing:
            lines = []
            with contextlib.suppress(IndexError):
                while True:
                    lines.append(self._lines.popleft())
            if not lines:
                return
            data = ("\n".join(lines) + "\n").encode("utf-8", "backslashreplace")
            with contextlib.suppress(OSError):  # a closed or full log must not take the service down
                while data:
                    written = os.write(self.fd, data)
                    data = data[written:]

    def close(self) -> None:
        self._closed = True
        self._ready.set()
        self.flush()
        super().close()


def setup_logging(service: str, level: str = "INFO") -> None:
    """JSON lines on stderr, written by a background thread (`BatchWriter`)."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr replaced by an object without a descriptor
        fd = 2
    handler = BatchWriter(fd)
    handler.setFormatter(JsonFormatter(service))
    atexit.register(handler.close)  # flush what is gathered when the service exits
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Library chatter at INFO (every HTTP request, every SMTP line) drowns the message trail.
    for noisy in ("httpx", "httpcore", "mail.log", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
