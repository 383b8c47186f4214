"""Settings of the local delivery service (`python -m services.delivery`)."""

from pathlib import Path

from pydantic import Field, field_validator

from shared.config.base import AuthClientSettings, BusSettings, ServiceSettings
from shared.retry_queue import RetryPolicy


class DeliverySettings(ServiceSettings, BusSettings, AuthClientSettings):
    """Local delivery: envelopes from the LOCAL_DELIVERY stream into the users' Maildirs."""

    mail_root: Path = Field(
        Path("/var/mail/yubin"),
        description="Root of the mailboxes: a user's Maildir is <mail root>/<domain>/<local part>/. "
        "POP3 reads the same directory.",
    )
    delivery_lifetime_s: float = Field(
        5 * 86400,
        gt=0,
        description="How long a recipient that cannot take the message yet (over quota, auth service "
        "down, disk error) is retried, counted from acceptance; then the message bounces (seconds; "
        "Action: failed, with the last temporary status). The relay's is relay_max_queue_lifetime_s.",
    )
    delivery_retry_delays_s: list[float] = Field(
        [60, 300, 900, 1800, 3600],
        min_length=1,
        description="Waits before the 1st, 2nd, ... retry of a deferred recipient (seconds, JSON list); "
        "the last one repeats until the lifetime ends. The relay's is relay_retry_schedule_s.",
    )
    delivery_retry_jitter: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="Each retry wait is randomized by ± this fraction, so retries spread out.",
    )
    delivery_delay_warning_s: float = Field(
        4 * 3600.0,
        ge=0,
        description="After this long not stored (over quota, auth service down, disk error), the sender "
        "gets one 'delayed' DSN, as from the relay (0 turns it off).",
    )
    delivery_scheduler_poll_s: float = Field(
        5.0,
        gt=0,
        description="The retry scheduler sleeps until the earliest due retry, but wakes at least this often "
        "(seconds; another replica may have scheduled an earlier one).",
    )

    @field_validator("delivery_retry_delays_s", mode="after")
    @classmethod
    def _schedule_positive(cls, value: list[float]) -> list[float]:
        if any(wait <= 0 for wait in value):
            raise ValueError("the retry schedule needs waits above 0")
        return value

    @property
    def retry_policy(self) -> RetryPolicy:
        """The one retry policy (`shared.retry_queue`), with local delivery's values."""
        return RetryPolicy(
            schedule_s=tuple(self.delivery_retry_delays_s),
            jitter=self.delivery_retry_jitter,
            lifetime_s=self.delivery_lifetime_s,
            delay_warning_s=self.delivery_delay_warning_s,
        )

    delivery_marker_ttl_s: int = Field(
        7 * 86400,
        ge=60,
        description="How long Redis remembers that a message was stored for a recipient (seconds). It "
        "must outlast any redelivery of the stream entry (bus_max_deliveries x bus_claim_idle_ms): a "
        "redelivery inside it never stores a second copy, even after the user deleted the first one.",
    )
    delivery_suppress_duplicates: bool = Field(
        True,
        description="Store one copy per message and recipient (like Cyrus IMAP's duplicatesuppression): a "
        "copy arriving under another queue id (a sending relay that crashed after our 250 sends again) is "
        "reported delivered and not stored. The same message means the same Message-ID, envelope sender and "
        "body as the sender sent it. Messages without a Message-ID are never suppressed.",
    )
    delivery_duplicate_ttl_s: int = Field(
        7 * 86400,
        ge=60,
        description="How long Redis remembers which queue id stored a message for a recipient (seconds). "
        "It should outlast a sender's retries (5 days for most MTAs); within it, another copy of the same "
        "message to the same recipient is suppressed.",
    )
