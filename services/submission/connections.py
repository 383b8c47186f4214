"""The sessions of one listener: who may connect, how long an idle session may stay, the memory their
messages may take together (`data_budget`), and letting them finish on shutdown.

Admission is Postfix's anvil in one process: at most `max_sessions` sessions in all, `max_per_ip` from one
client address, and `max_rate_per_ip` connection attempts from one address per `rate_window_s` (refused
attempts count, so hammering does not get through). Stress mode is Postfix's too: while the listener is
nearly full, every session's idle timeout shrinks, so idle connections (a flood, or clients that merely
linger) give their slots to clients that have mail to send.
"""

import asyncio
import contextlib
import enum
import logging
import math
import sys
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import Protocol

from services.submission import replies
from services.submission.data_budget import DataBudget
from shared.config.submission import SubmissionSettings

log = logging.getLogger(__name__)


class Closable(Protocol):
    @property
    def in_transaction(self) -> bool: ...

    def end_session(self, reply: str) -> None: ...

    def idle_timeout_changed(self) -> None: ...


class Refusal(enum.Enum):
    """Why a connection is greeted with 421 and closed."""

    STOPPING = enum.auto()
    FULL = enum.auto()
    TOO_MANY_FROM_ADDRESS = enum.auto()
    RATE_FROM_ADDRESS = enum.auto()

    def reply(self, host: str, address: str | None) -> str:
        template = {
            Refusal.STOPPING: replies.SHUTTING_DOWN,
            Refusal.FULL: replies.TOO_MANY_CONNECTIONS,
            # Postfix answers both per-address limits alike: the client needs no more detail to back off.
            Refusal.TOO_MANY_FROM_ADDRESS: replies.TOO_MANY_CONNECTIONS_FROM,
            Refusal.RATE_FROM_ADDRESS: replies.TOO_MANY_CONNECTIONS_FROM,
        }[self]
        return template.format(host=host, address=address or "unknown")


class ConnectionRate:
    """Connection attempts per client address in fixed windows of `window_s` (anvil's rate), started by each
    address's first attempt. Memory: one entry per address seen in the last window, at most `max_addresses`
    (beyond that the oldest windows are forgotten: a flood from ever new addresses cannot grow the table)."""

    max_addresses = 100_000

    def __init__(self, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._windows: OrderedDict[str, tuple[float, int]] = OrderedDict()  # oldest window first

    def attempt(self, address: str) -> int:
        """Count one attempt; the number of attempts from `address` in its current window."""
        now = self._clock()
        while self._windows:  # windows start in insertion order: drop the expired ones at the front
            oldest, (start, _) = next(iter(self._windows.items()))
            if now - start < self.window_s:
                break
            del self._windows[oldest]
        start, count = self._windows.get(address, (now, 0))
        if count == 0 and len(self._windows) >= self.max_addresses:
            self._windows.popitem(last=False)
        self._windows[address] = (start, count + 1)
        return count + 1


class SessionRegistry:
    def __init__(
        self,
        max_sessions: int,
        *,
        max_per_ip: int = 0,
        max_rate_per_ip: int = 0,
        rate_window_s: float = 60.0,
        idle_timeout_s: float = math.inf,
        stress_at: int | None = None,
        stress_idle_timeout_s: float = math.inf,
        data_memory: int | None = None,
    ) -> None:
        self.max_sessions = max_sessions
        self.max_per_ip = max_per_ip
        self.max_rate_per_ip = max_rate_per_ip
        self.normal_idle_timeout_s = idle_timeout_s
        self.stress_at = stress_at if stress_at is not None else max_sessions
        self.stress_idle_timeout_s = min(stress_idle_timeout_s, idle_timeout_s)
        self.data_budget = DataBudget(data_memory if data_memory is not None else sys.maxsize)
        self.stopping = False
        self._sessions: set[Closable] = set()
        self._addresses: dict[Closable, str] = {}
        self._per_ip: Counter[str] = Counter()
        self._rate = ConnectionRate(rate_window_s)
        self._stressed = False
        self._empty = asyncio.Event()
        self._empty.set()

    @classmethod
    def for_listener(cls, settings: SubmissionSettings) -> "SessionRegistry":
        return cls(
            settings.max_connections,
            max_per_ip=settings.max_connections_per_ip,
            max_rate_per_ip=settings.max_connection_rate_per_ip,
            rate_window_s=settings.connection_rate_window_s,
            idle_timeout_s=settings.idle_timeout_s,
            stress_at=math.ceil(settings.max_connections * settings.stress_threshold_percent / 100),
            stress_idle_timeout_s=settings.stress_idle_timeout_s,
            data_memory=settings.max_data_memory,
        )

    def __len__(self) -> int:
        return len(self._sessions)

    @property
    def stressed(self) -> bool:
        return self._stressed

    @property
    def idle_timeout_s(self) -> float:
        """How long a session may now stay silent: shorter under stress."""
        return self.stress_idle_timeout_s if self._stressed else self.normal_idle_timeout_s

    def admit(self, session: Closable, address: str | None) -> Refusal | None:
        """Register a new session, or say why it is refused (it is then not registered)."""
        if self.stopping:
            return Refusal.STOPPING
        if address is not None:
            attempts = self._rate.attempt(address)
            if self.max_per_ip and self._per_ip[address] >= self.max_per_ip:
                log.warning(
                    "connection refused: too many connections from one address",
                    extra={"client": address, "connections": self._per_ip[address]},
                )
                return Refusal.TOO_MANY_FROM_ADDRESS
            if self.max_rate_per_ip and attempts > self.max_rate_per_ip:
                log.warning(
                    "connection refused: connection rate from one address",
                    extra={"client": address, "attempts": attempts, "window_s": self._rate.window_s},
                )
                return Refusal.RATE_FROM_ADDRESS
        if len(self._sessions) >= self.max_sessions:
            log.warning("connection refused: too many connections", extra={"client": address})
            return Refusal.FULL
        self._sessions.add(session)
        if address is not None:
            self._addresses[session] = address
            self._per_ip[address] += 1
        self._empty.clear()
        self._update_stress()
        return None

    def release(self, session: Closable) -> None:
        if session not in self._sessions:
            return
        self._sessions.discard(session)
        address = self._addresses.pop(session, None)
        if address is not None:
            self._per_ip[address] -= 1
            if self._per_ip[address] <= 0:
                del self._per_ip[address]
        if not self._sessions:
            self._empty.set()
        self._update_stress()

    def _update_stress(self) -> None:
        stressed = len(self._sessions) >= self.stress_at
        if stressed == self._stressed:
            return
        self._stressed = stressed
        log.warning(
            "stress mode on" if stressed else "stress mode off",
            extra={"sessions": len(self._sessions), "idle_timeout_s": self.idle_timeout_s},
        )
        if stressed:  # sessions already waiting get the shorter limit now, counted from their last command
            for session in list(self._sessions):
                session.idle_timeout_changed()

    async def drain(self, grace_s: float, goodbye: str) -> None:
        """Close idle sessions now, give those in a transaction `grace_s` to finish, then close the rest."""
        self.stopping = True
        for session in list(self._sessions):
            if not session.in_transaction:
                session.end_session(goodbye)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._empty.wait(), grace_s)
        if self._sessions:
            log.warning("closing sessions still running after the grace period", extra={"count": len(self)})
            for session in list(self._sessions):
                session.end_session(goodbye)
            # connection_lost comes on a later loop turn; give the closes a moment to finish.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._empty.wait(), 2.0)
