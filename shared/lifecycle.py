"""Graceful shutdown: SIGTERM or SIGINT sets an event; services stop taking work, finish, and exit 0."""

import asyncio
import logging
import signal

log = logging.getLogger(__name__)


def stop_on_signals() -> asyncio.Event:
    """Return an event set by the first SIGTERM/SIGINT. Must be called inside the running loop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def _stop(signame: str) -> None:
        if not stop.is_set():
            log.info("stopping", extra={"signal": signame})
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _stop, sig.name)
    return stop
