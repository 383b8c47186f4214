"""Trace events: every step of a message's journey, published to the trace stream for people to watch."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from shared.models.envelope import utcnow


class TraceEvent(BaseModel):
    queue_id: str
    message_id: str | None = None
    service: str = Field(description="submission, mx, relay, delivery, pop3 ...")
    event: str = Field(description="accepted, mx-lookup, attempt, delivered, deferred, bounced, stored ...")
    at: datetime = Field(default_factory=utcnow)
    detail: dict[str, Any] = Field(default_factory=dict)
