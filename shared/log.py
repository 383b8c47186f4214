"""JSON logs on stderr, one object per line, carrying the queue id and Message-ID of the work at hand.

`log_context(queue_id=..., message_id=...)` sets them for everything logged inside it (contextvars, so
concurrent asyncio tasks keep their own). Fields passed with `extra=` are included too.
"""

import atexit
import contextlib
import contextvars
import json
import logging
import logging.handlers
import queue
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
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


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(_context.get() or {})
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def setup_logging(service: str, level: str = "INFO") -> None:
    """JSON lines on stderr, written by a background thread.

    Records are formatted where they are logged (so the contextvars of the task at hand are read), then
    queued; a listener thread writes them. A slow reader of stderr (a process runner, a full pipe) then
    delays the log, not the event loop serving SMTP or POP3 clients.
    """
    formatter = JsonFormatter(service)
    log_queue: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    enqueue = logging.handlers.QueueHandler(log_queue)
    enqueue.setFormatter(formatter)
    listener = logging.handlers.QueueListener(log_queue, logging.StreamHandler(sys.stderr))
    listener.start()
    atexit.register(listener.stop)  # flush what is queued when the service exits
    root = logging.getLogger()
    root.handlers[:] = [enqueue]
    root.setLevel(level.upper())
    # Library chatter at INFO (every HTTP request, every SMTP line) drowns the message trail.
    for noisy in ("httpx", "httpcore", "mail.log", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
