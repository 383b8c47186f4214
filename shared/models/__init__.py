"""Pydantic models for everything that crosses a process boundary (the bus, the auth API)."""

from shared.models.delivery import DeliveryResult, RecipientState, RecipientStatus
from shared.models.directory import (
    Alias,
    Domain,
    DomainList,
    RecipientInfo,
    User,
    VerifyRequest,
    VerifyResult,
)
from shared.models.envelope import NULL_SENDER, Envelope, new_queue_id, utcnow
from shared.models.trace import TraceEvent

__all__ = [
    "NULL_SENDER",
    "Alias",
    "DeliveryResult",
    "Domain",
    "DomainList",
    "Envelope",
    "RecipientInfo",
    "RecipientState",
    "RecipientStatus",
    "TraceEvent",
    "User",
    "VerifyRequest",
    "VerifyResult",
    "new_queue_id",
    "utcnow",
]
