"""Lab faults: a site's MX answering 4xx/5xx, dropping connections or delaying replies for a share of
sessions, and DNS answering SERVFAIL for a domain; each with an expiry.

A fault lives in the site's Redis under its own key with a TTL (`yubin:fault:<id>`), so it ends by itself
and every replica of a service sees the same faults; the set `yubin:faults` indexes the ids (an id whose
key has expired is skipped and pruned). Added and removed through the admin API (services/auth/routes/
faults.py, `yubin lab fault`); applied by the MX listener (services/submission/fault_hook.py) and by the
lab's DNS front (yubin/lab/dns_front.py). Every change goes to the trace stream; see docs/faults.md.
"""

import re
import secrets
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from redis.asyncio import Redis

from shared.bus import stage_publish
from shared.models.envelope import utcnow
from shared.models.trace import TraceEvent
from shared.streams import TRACE, TRACE_MAXLEN

KEY_PREFIX = "yubin:fault:"
INDEX = "yubin:faults"
MAX_FAULTS = 100
"""Active faults per site: each MX session looks at all of them, so there is a ceiling."""
MAX_EXPIRES_IN_S = 24 * 3600
MAX_DELAY_S = 600.0
"""Above the relay's default SMTP timeouts (Postfix's are 300 s), so a delay can also make it time out."""
MAX_REPLY = 200
FAULT_ID = re.compile(r"[0-9a-f]{16}")

# RFC 5321 §4.2: a 4xx or 5xx code; an optional RFC 3463 enhanced code of the same class; printable text.
_REPLY = re.compile(r"(?P<code>[45][0-5][0-9])(?: (?P<enhanced>[45])\.[0-9]{1,3}\.[0-9]{1,3})? [\x20-\x7e]+")
# A host name (RFC 1035 letters, digits, hyphens; RFC 2181 allows more but the lab's zones do not need it).
_DOMAIN = re.compile(
    r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*"
)


class FaultKind(StrEnum):
    SMTP_REPLY = "smtp-reply"
    """The MX answers `reply` (4xx or 5xx) at `stage` instead of going on."""
    DROP = "drop"
    """The MX closes the connection at `stage` without a reply."""
    DELAY = "delay"
    """The MX waits `delay_s` before it answers at `stage`, then goes on as usual."""
    DNS_SERVFAIL = "dns-servfail"
    """The lab's resolver answers SERVFAIL for `domain` and every name under it."""


class FaultStage(StrEnum):
    CONNECT = "connect"
    """Before the greeting."""
    MAIL = "mail"
    """At MAIL FROM."""
    RCPT = "rcpt"
    """At each RCPT TO."""
    DATA = "data"
    """After the message data, before it is stored (so a refused or dropped message is not kept)."""


SMTP_KINDS = (FaultKind.SMTP_REPLY, FaultKind.DROP, FaultKind.DELAY)


def valid_reply(reply: str) -> bool:
    match = _REPLY.fullmatch(reply)
    return match is not None and match["enhanced"] in (None, reply[0])


class FaultSpec(BaseModel):
    """What a person asks for (`POST /v1/faults`). Fields that do not apply to the kind are refused."""

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    share: float = Field(
        1.0, ge=0, le=1, strict=True, description="Share of sessions (or DNS queries) the fault hits, 0..1."
    )
    reply: str | None = Field(
        None,
        max_length=MAX_REPLY,
        description="smtp-reply only: the reply, a 4xx or 5xx code, an optional enhanced code of the same "
        'class and a printable ASCII text, e.g. "451 4.3.0 lab fault".',
    )
    delay_s: float | None = Field(
        None, gt=0, le=MAX_DELAY_S, strict=True, description="delay only: seconds to wait before the reply."
    )
    domain: str | None = Field(
        None, max_length=254, description="dns-servfail only: the domain (and every name under it)."
    )
    stage: FaultStage | None = Field(
        None, description="MX faults: where in the session it strikes (default data); not for dns-servfail."
    )
    expires_in_s: int = Field(
        ge=1, le=MAX_EXPIRES_IN_S, strict=True, description="Seconds until the fault ends by itself (≤ 24 h)."
    )

    @model_validator(mode="after")
    def _fits_kind(self) -> Self:
        allowed = {
            FaultKind.SMTP_REPLY: {"reply", "stage"},
            FaultKind.DROP: {"stage"},
            FaultKind.DELAY: {"delay_s", "stage"},
            FaultKind.DNS_SERVFAIL: {"domain"},
        }[self.kind]
        given = {name for name in ("reply", "delay_s", "domain", "stage") if getattr(self, name) is not None}
        if given - allowed:
            raise ValueError(f"{', '.join(sorted(given - allowed))} does not apply to a {self.kind} fault")
        if self.kind is FaultKind.SMTP_REPLY and (self.reply is None or not valid_reply(self.reply)):
            raise ValueError(
                "smtp-reply needs a reply: a 4xx or 5xx code, optionally an enhanced code of the same class, "
                'and printable ASCII text, e.g. "451 4.3.0 lab fault"'
            )
        if self.kind is FaultKind.DELAY and self.delay_s is None:
            raise ValueError("a delay fault needs delay_s")
        if self.kind is FaultKind.DNS_SERVFAIL:
            domain = (self.domain or "").lower().rstrip(".")
            if not _DOMAIN.fullmatch(domain):
                raise ValueError("dns-servfail needs a domain name (letters, digits, hyphens, dots)")
            self.domain = domain
        elif self.stage is None:
            self.stage = FaultStage.DATA
        return self


class Fault(BaseModel):
    """An active fault as stored and listed."""

    id: str
    kind: FaultKind
    share: float
    reply: str | None = None
    delay_s: float | None = None
    domain: str | None = None
    stage: FaultStage | None = None
    created_at: datetime
    expires_at: datetime

    def hits_name(self, name: str) -> bool:
        """A dns-servfail fault for beta.test covers beta.test and mx.beta.test, not alphabeta.test."""
        name = name.lower().rstrip(".")
        return self.domain is not None and (name == self.domain or name.endswith("." + self.domain))


class TooManyFaults(Exception):
    pass


def _key(fault_id: str) -> str:
    return KEY_PREFIX + fault_id


def _trace(event: str, fault: Fault, by: str) -> TraceEvent:
    # No message yet: queue_id stays empty and the fault's id is in the detail.
    return TraceEvent(
        queue_id="",
        service=by,
        event=event,
        detail={"fault": fault.model_dump(mode="json", exclude_none=True)},
    )


class FaultStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def active(self, *, prune: bool = False) -> list[Fault]:
        """The faults that have not expired, oldest first. Readers (the MX, the DNS front) only read;
        the admin API prunes ids whose key Redis has already expired."""
        ids = sorted(member.decode() for member in await self.redis.smembers(INDEX))
        if not ids:
            return []
        values = await self.redis.mget([_key(fault_id) for fault_id in ids])
        now = utcnow()
        faults: list[Fault] = []
        gone: list[str] = []
        for fault_id, value in zip(ids, values, strict=True):
            fault = _parse(value)
            if fault is None or fault.expires_at <= now:
                gone.append(fault_id)
            else:
                faults.append(fault)
        if prune and gone:
            await self.redis.srem(INDEX, *gone)
        return sorted(faults, key=lambda f: f.created_at)

    async def add(self, spec: FaultSpec, *, by: str = "admin-api") -> Fault:
        if len(await self.active(prune=True)) >= MAX_FAULTS:
            raise TooManyFaults(f"at most {MAX_FAULTS} faults at a time; remove one first")
        now = utcnow()
        fault = Fault(
            id=secrets.token_hex(8),
            created_at=now,
            expires_at=now + timedelta(seconds=spec.expires_in_s),
            **spec.model_dump(exclude={"expires_in_s"}),
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(_key(fault.id), fault.model_dump_json(), px=spec.expires_in_s * 1000)
            pipe.sadd(INDEX, fault.id)
            stage_publish(pipe, TRACE, _trace("fault-added", fault, by), maxlen=TRACE_MAXLEN)
            await pipe.execute()
        return fault

    async def remove(self, fault_id: str, *, by: str = "admin-api") -> Fault | None:
        """The removed fault, or None if there is none with that id (never was, or expired)."""
        if not FAULT_ID.fullmatch(fault_id):
            return None
        fault = _parse(await self.redis.get(_key(fault_id)))
        if fault is None:
            await self.redis.srem(INDEX, fault_id)
            return None
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(_key(fault_id))
            pipe.srem(INDEX, fault_id)
            stage_publish(pipe, TRACE, _trace("fault-removed", fault, by), maxlen=TRACE_MAXLEN)
            deleted, *_ = await pipe.execute()
        return fault if deleted else None


def _parse(value: Any) -> Fault | None:
    if value is None:
        return None
    try:
        return Fault.model_validate_json(value)
    except ValidationError:
        return None  # written by another version: ignored, and it expires like any other
