"""The sessions of one listener: how many may run at once, and letting them finish on shutdown."""

import asyncio
import contextlib
import logging
from typing import Protocol

log = logging.getLogger(__name__)


class Closable(Protocol):
    @property
    def in_transaction(self) -> bool: ...

    def end_session(self, reply: str) -> None: ...


class SessionRegistry:
    def __init__(self, max_sessions: int) -> None:
        self.max_sessions = max_sessions
        self.stopping = False
        self._sessions: set[Closable] = set()
        self._empty = asyncio.Event()
        self._empty.set()

    def __len__(self) -> int:
        return len(self._sessions)

    def admit(self, session: Closable) -> bool:
        if self.stopping or len(self._sessions) >= self.max_sessions:
            return False
        self._sessions.add(session)
        self._empty.clear()
        return True

    def release(self, session: Closable) -> None:
        self._sessions.discard(session)
        if not self._sessions:
            self._empty.set()

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
