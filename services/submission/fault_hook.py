"""Lab faults applied by the MX listener (see shared/faults.py, docs/faults.md).

The session calls `intervene` at each stage (connect, MAIL, RCPT, after DATA). The site's faults are read
from Redis at most once per `refresh_s`, shared by every session of the process, so a command costs no
Redis round trip. Each fault that strikes is logged and written to the trace stream, with the session's
client and envelope (and the Message-ID at the data stage; no queue id exists yet, since a faulted
message is not stored). The submission role has no hook: faults are about the site as a receiving MX.
"""

import asyncio
import logging
import random
import time
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.submission.headers import message_id_of, parse_headers
from shared.bus import publish
from shared.faults import SMTP_KINDS, Fault, FaultKind, FaultStage, FaultStore
from shared.models.envelope import utcnow
from shared.models.trace import TraceEvent
from shared.streams import TRACE, TRACE_MAXLEN

log = logging.getLogger(__name__)


class FaultedSession(Protocol):
    """What the hook needs of a session (services/submission/session.py)."""

    async def push(self, status: str) -> None: ...

    def drop(self) -> None: ...

    def peer_ip(self) -> str | None: ...

    def fault_context(self) -> dict[str, object]: ...

    def restart_idle_timer(self, duration: float | None = None) -> None: ...

    @property
    def idle_timeout_s(self) -> float: ...


class FaultHook:
    def __init__(self, redis: Redis, *, refresh_s: float = 1.0) -> None:
        self.store = FaultStore(redis)
        self.redis = redis
        self.refresh_s = refresh_s
        self._faults: list[Fault] = []
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()
        self._failing = False

    async def current(self) -> list[Fault]:
        """The MX faults in force, from a copy at most `refresh_s` old."""
        if time.monotonic() - self._read_at >= self.refresh_s:
            async with self._lock:  # one read for all the sessions that find the copy stale
                if time.monotonic() - self._read_at >= self.refresh_s:
                    await self._refresh()
        now = utcnow()
        return [f for f in self._faults if f.expires_at > now]

    async def _refresh(self) -> None:
        try:
            faults = await self.store.active()
        except RedisError as exc:
            # Mail goes on without faults rather than failing because the lab's fault list is unreadable.
            if not self._failing:
                log.warning("cannot read faults; none applied", extra={"error": str(exc)})
            self._failing = True
            faults = []
        else:
            self._failing = False
        self._faults = [f for f in faults if f.kind in SMTP_KINDS]
        self._read_at = time.monotonic()

    async def intervene(self, session: FaultedSession, stage: FaultStage, data: bytes | None = None) -> bool:
        """Apply the faults of `stage`. True when a fault answered or dropped the connection: the
        session does nothing more with the command (at connect: nothing more at all)."""
        faults = [f for f in await self.current() if f.stage is stage]
        for fault in faults:
            if fault.share < 1 and random.random() >= fault.share:
                continue
            await self._record(fault, session, data)
            if fault.kind is FaultKind.DELAY:
                assert fault.delay_s is not None
                # Our own silence is not the client's: the idle limit counts from the end of the delay.
                session.restart_idle_timer(fault.delay_s + session.idle_timeout_s)
                await asyncio.sleep(fault.delay_s)
                continue
            if fault.kind is FaultKind.SMTP_REPLY:
                assert fault.reply is not None
                await session.push(fault.reply)
                if stage is FaultStage.CONNECT:
                    session.drop()  # a refusing greeting ends the session (RFC 5321 §3.1)
                return True
            session.drop()
            return True
        return False

    async def _record(self, fault: Fault, session: FaultedSession, data: bytes | None) -> None:
        message_id = message_id_of(parse_headers(data)) if data is not None else None
        detail = {
            "fault_id": fault.id,
            "kind": fault.kind.value,
            "stage": fault.stage.value if fault.stage else None,
            "reply": fault.reply,
            "delay_s": fault.delay_s,
            **session.fault_context(),
        }
        detail = {key: value for key, value in detail.items() if value is not None}
        log.info("fault injected", extra={**detail, "message_id": message_id})
        try:
            await publish(
                self.redis,
                TRACE,
                TraceEvent(queue_id="", message_id=message_id, service="mx", event="fault", detail=detail),
                maxlen=TRACE_MAXLEN,
            )
        except RedisError as exc:
            log.warning("could not trace a fault", extra={"error": str(exc)})
