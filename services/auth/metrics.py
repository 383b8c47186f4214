"""The auth service's metrics: logins checked, and the site's queues (docs/metrics.md)."""

from prometheus_client import REGISTRY, Counter

from shared.config.auth import AuthSettings
from shared.metrics import NAMESPACE, start_metrics_server
from shared.queue_gauges import QueueGauges

VERIFICATIONS = Counter(
    "auth_verifications",
    "Logins checked for the mail services, by service (submission, mx, pop3) and result: ok, failed, "
    "throttled (refused unchecked while the throttle delays this user or network), busy (too many logins "
    "in progress).",
    ["service", "result"],
    namespace=NAMESPACE,
)
SERVICES = ("submission", "mx", "pop3")
RESULTS = ("ok", "failed", "throttled", "busy")

for _service in SERVICES:  # every series exists from the start, so rate() sees the first one
    for _result in RESULTS:
        VERIFICATIONS.labels(_service, _result)


def verified(service: str, result: str) -> None:
    # The service name comes from the request: bounded to the known ones, so it cannot grow the series.
    VERIFICATIONS.labels(service if service in SERVICES else "other", result).inc()


def serve_metrics(settings: AuthSettings) -> None:
    """The endpoint, with the site-wide queue gauges: this service exports them for its site."""
    if settings.metrics_port:
        REGISTRY.register(QueueGauges(settings.redis_url))
    start_metrics_server(settings)
