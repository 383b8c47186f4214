"""Idle SMTP connections kept for a few seconds, so the next message to the same server skips the TCP
connect, greeting, EHLO and TLS handshake (like Postfix's `smtp_connection_cache_on_demand`).

A connection is in the cache only while nobody uses it: `take` removes it, so one connection carries one
transaction at a time however many deliveries run at once; the caller gives it back with `put` after a
clean transaction, or closes it. The user of a taken connection checks it with RSET first
(`smtp_session`). An idle connection is closed (QUIT) after `idle_s`; one older than `reuse_limit_s` is
not cached again; at most `max_idle` connections wait in total.
"""

import asyncio
import logging
import time
from dataclasses import dataclass, field

import aiosmtplib
from aiosmtplib import SMTP

log = logging.getLogger(__name__)

Destination = tuple[str, int, str]
"""(address, port, MX host name): the name too, since STARTTLS checked the certificate for it."""


@dataclass(eq=False)
class Connection:
    smtp: SMTP
    tls: bool
    opened_at: float = field(default_factory=time.monotonic)
    transactions: int = 0
    rset_pending: bool = False
    """Taken from the cache for a pipelined transaction, which starts with RSET (`smtp_session`)."""


class ConnectionCache:
    def __init__(self, *, idle_s: float, max_idle: int, reuse_limit_s: float, quit_timeout_s: float) -> None:
        self.idle_s = idle_s
        self.max_idle = max_idle
        self.reuse_limit_s = reuse_limit_s
        self.quit_timeout_s = quit_timeout_s
        self._idle: dict[Destination, list[tuple[Connection, asyncio.TimerHandle]]] = {}
        self._count = 0
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def enabled(self) -> bool:
        return self.idle_s > 0 and self.max_idle > 0

    def idle_count(self) -> int:
        return self._count

    def take(self, destination: Destination) -> Connection | None:
        """An idle connection to `destination` (the most recently used one), now the caller's alone."""
        waiting = self._idle.get(destination)
        while waiting:
            connection, expiry = waiting.pop()
            self._count -= 1
            expiry.cancel()
            if connection.smtp.is_connected:
                if not waiting:
                    del self._idle[destination]
                return connection
            connection.smtp.close()  # the server hung up while it was idle
        self._idle.pop(destination, None)
        return None

    def put(self, destination: Destination, connection: Connection) -> bool:
        """Keep a connection after a clean transaction; False (the caller closes it) when it may not stay."""
        if (
            not self.enabled
            or self._count >= self.max_idle
            or not connection.smtp.is_connected
            or time.monotonic() - connection.opened_at >= self.reuse_limit_s
        ):
            return False
        expiry = asyncio.get_running_loop().call_later(self.idle_s, self._expire, destination, connection)
        self._idle.setdefault(destination, []).append((connection, expiry))
        self._count += 1
        return True

    async def close(self) -> None:
        """QUIT every idle connection (at shutdown) and wait for the ones already closing."""
        for destination in list(self._idle):
            while (connection := self.take(destination)) is not None:
                self._quit_later(connection)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def _expire(self, destination: Destination, connection: Connection) -> None:
        waiting = self._idle.get(destination, [])
        for index, (candidate, _expiry) in enumerate(waiting):
            if candidate is connection:
                del waiting[index]
                self._count -= 1
                if not waiting:
                    del self._idle[destination]
                self._quit_later(connection)
                return

    def close_later(self, connection: Connection) -> None:
        """QUIT a connection that is not kept, without making its user wait for the goodbye."""
        self._quit_later(connection)

    def _quit_later(self, connection: Connection) -> None:
        task = asyncio.create_task(quit_politely(connection.smtp, self.quit_timeout_s))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


async def quit_politely(smtp: SMTP, wait_s: float) -> None:
    try:
        await smtp.quit(timeout=wait_s)
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        smtp.close()  # nothing is in flight on it; a rude goodbye changes nothing
    except asyncio.CancelledError:
        smtp.close()
        raise
