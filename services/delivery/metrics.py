"""Local delivery's metrics (docs/metrics.md)."""

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from prometheus_client import Counter, Histogram

from shared.metrics import DELAY_BUCKETS_S, NAMESPACE
from shared.models import Envelope, RecipientStatus

RECIPIENTS = Counter(
    "delivery_recipients",
    "Recipients handled by local delivery, by result: stored (in the Maildir), duplicate (suppressed), "
    "deferred (retried later), bounced.",
    ["result"],
    namespace=NAMESPACE,
)
DELAY = Histogram(
    "delivery_delay_seconds",
    "From acceptance at this site (MX or submission) to the message stored in the Maildir, per recipient.",
    namespace=NAMESPACE,
    buckets=DELAY_BUCKETS_S,
)

for _result in ("stored", "duplicate", "deferred", "bounced"):  # every series exists from the start
    RECIPIENTS.labels(_result)


class Stored(Protocol):
    stored: Path | None
    duplicate_of: str | None


def finished(
    envelope: Envelope,
    outcomes: Sequence[Stored],
    failed: Sequence[RecipientStatus],
    deferred: Sequence[RecipientStatus],
    now: float | None = None,
) -> None:
    """Count one finished attempt (after its transaction committed)."""
    delay = max((now or time.time()) - envelope.received_at.timestamp(), 0.0)
    for outcome in outcomes:
        if outcome.stored is not None:
            RECIPIENTS.labels("stored").inc()
            DELAY.observe(delay)
        elif outcome.duplicate_of is not None:
            RECIPIENTS.labels("duplicate").inc()
    RECIPIENTS.labels("bounced").inc(len(failed))
    RECIPIENTS.labels("deferred").inc(len(deferred))
