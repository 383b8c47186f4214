"""Settings of the local delivery service (`python -m services.delivery`)."""

from pathlib import Path

from pydantic import Field

from shared.config.base import AuthClientSettings, BusSettings, ServiceSettings


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
        "down, disk error) is retried, counted from acceptance; then the message bounces (seconds).",
    )
    delivery_retry_delays_s: list[float] = Field(
        [60, 300, 900, 1800, 3600],
        min_length=1,
        description="Waits before the 1st, 2nd, ... retry of a deferred recipient (seconds, JSON list); "
        "the last one repeats until the lifetime ends.",
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
        description="Longest wait between two looks at the deferred queue for envelopes that are due "
        "(seconds). Retries are never later than their due time plus this.",
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
