"""The relay's metrics (docs/metrics.md)."""

import time

from prometheus_client import Counter, Histogram

from shared.metrics import DELAY_BUCKETS_S, NAMESPACE
from shared.models import Envelope, RecipientState, RecipientStatus

ATTEMPTS = Counter(
    "relay_attempts",
    "Delivery attempts to remote servers, one per recipient and attempt, by result.",
    ["result"],
    namespace=NAMESPACE,
)
DELAY = Histogram(
    "relay_delivery_delay_seconds",
    "From acceptance at this site to the remote's final answer (delivered or bounced), per recipient.",
    ["result"],
    namespace=NAMESPACE,
    buckets=DELAY_BUCKETS_S,
)

MX_LOOKUPS = Counter(
    "relay_mx_lookups",
    "Routes resolved for a recipient domain (MX lookup, or the implicit MX), by result: ok, failed.",
    ["result"],
    namespace=NAMESPACE,
)

RESULTS = {
    RecipientState.DELIVERED: "delivered",
    RecipientState.DEFERRED: "deferred",
    RecipientState.FAILED: "bounced",
}

for _result in RESULTS.values():  # every series exists from the start, so rate() sees the first one
    ATTEMPTS.labels(_result)
for _result in ("ok", "failed"):
    MX_LOOKUPS.labels(_result)


def finished(envelope: Envelope, statuses: list[RecipientStatus], now: float | None = None) -> None:
    """Count one finished attempt (after its transaction committed)."""
    delay = (now or time.time()) - envelope.received_at.timestamp()
    for status in statuses:
        result = RESULTS[status.state]
        ATTEMPTS.labels(result).inc()
        if status.state != RecipientState.DEFERRED:
            DELAY.labels(result).observe(max(delay, 0.0))
