"""Per-recipient outcomes of delivery attempts."""

from enum import StrEnum

from pydantic import BaseModel, Field

from shared.models.envelope import utcnow


class RecipientState(StrEnum):
    DELIVERED = "delivered"
    DEFERRED = "deferred"  # temporary failure: retried later
    FAILED = "failed"  # permanent failure: bounced


class RecipientStatus(BaseModel):
    """What happened to one recipient (the fields a DSN needs, RFC 3464 §2.3)."""

    recipient: str
    state: RecipientState
    status: str = Field(description='Enhanced status code, RFC 3463, e.g. "2.0.0", "4.4.1", "5.1.1".')
    diagnostic: str | None = Field(None, description="The remote server's reply, or our own explanation.")
    remote_mta: str | None = Field(None, description="Host name of the server that answered, if any.")


class DeliveryResult(BaseModel):
    """The outcome of one attempt at one envelope."""

    queue_id: str
    attempt: int
    statuses: list[RecipientStatus]
    finished_at: str = Field(default_factory=lambda: utcnow().isoformat())

    def with_state(self, state: RecipientState) -> list[RecipientStatus]:
        return [s for s in self.statuses if s.state == state]
