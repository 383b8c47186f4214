"""The envelope: what travels on the bus for each accepted message (the body travels by reference)."""

import secrets
import time
from datetime import UTC, datetime

from pydantic import BaseModel, Field, field_validator

NULL_SENDER = ""
"""The null reverse-path `<>` (RFC 5321 §4.5.5): bounces are sent from it and are never bounced."""


def new_queue_id() -> str:
    """A queue id: sortable by acceptance time (milliseconds, hex) then 40 random bits, like `18C2F0A1B2C3D4E5F6A7B8`."""
    return f"{int(time.time() * 1000):011X}{secrets.token_hex(5).upper()}"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """One message's SMTP envelope and bookkeeping. Recipients are those this envelope still has work for."""

    queue_id: str = Field(default_factory=new_queue_id)
    sender: str = Field(NULL_SENDER, description='MAIL FROM address; "" is the null sender <>.')
    recipients: list[str] = Field(min_length=1)
    original_recipients: dict[str, str] = Field(
        default_factory=dict,
        description="Recipient → the address the client gave in RCPT TO, for recipients that came from an "
        "alias expansion (DSN Original-Recipient, RFC 3464 §2.3.1).",
    )
    auth_user: str | None = Field(
        None, description="Authenticated submitter, if the message came in with AUTH."
    )
    client_addr: str | None = None
    helo: str | None = None
    received_at: datetime = Field(default_factory=utcnow)
    attempts: int = Field(0, ge=0, description="Delivery attempts made so far.")
    message_id: str | None = None
    hop_count: int = Field(0, ge=0, description="Received headers counted at acceptance (loop detection).")
    body_id: str
    size: int = Field(0, ge=0, description="Body size in octets.")
    prepended: int = Field(
        0,
        ge=0,
        description="Octets of header fields our MX or submission service put on top of the body (Received; "
        "Date and Message-ID when missing). The rest is the message as the client sent it, which is the "
        "same in every copy a sender sends (see services/delivery/duplicates.py).",
    )
    delay_notified: bool = Field(False, description="Whether the sender already got a 'delayed' DSN.")

    @field_validator("sender", "recipients", "auth_user", "helo", "message_id", mode="after")
    @classmethod
    def _no_line_breaks(cls, value: object) -> object:
        # Envelope data ends up in SMTP commands and headers: a CR or LF here would let one message
        # inject commands into another conversation.
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, str) and ("\r" in item or "\n" in item or "\0" in item):
                raise ValueError("line breaks and NUL are not allowed in envelope fields")
        return value

    @property
    def is_bounce(self) -> bool:
        return self.sender == NULL_SENDER

    def log_fields(self) -> dict[str, str | None]:
        return {"queue_id": self.queue_id, "message_id": self.message_id}
