"""Prometheus metrics: the `/metrics` endpoint every service serves, and what their metrics share.

Each service declares its own metrics next to its code (`services/<service>/metrics.py`) in
prometheus_client's default registry, which also carries the `process_*` and `python_*` metrics of the
client library. Names follow the Prometheus conventions (`yubin_` namespace, `_total` counters, seconds
and bytes) and the postfix exporter's names where they mean the same thing (`smtpd_connects_total`,
`delivery_delay_seconds`); docs/metrics.md lists every metric.

The endpoint is prometheus_client's own HTTP server in a daemon thread: a scrape never waits for the
event loop, and collectors that read Redis on scrape (`shared.queue_gauges`) do so with a client of their
own in that thread.
"""

import logging
import re
from typing import Protocol

from prometheus_client import REGISTRY, disable_created_metrics, start_http_server
from prometheus_client.registry import CollectorRegistry

log = logging.getLogger(__name__)

NAMESPACE = "yubin"

DELAY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 86400)
"""Accept → stored spans milliseconds (the lab on loopback) to days (retries), hence the wide range."""

_REPLY_CODE = re.compile(r"([2-5])\d\d(?:[ -]|\r?$)")


class MetricsEndpoint(Protocol):
    metrics_host: str
    metrics_port: int


def code_class(reply: str) -> str:
    """`2xx`, `3xx`, `4xx` or `5xx` for an SMTP reply; `other` for anything else (a bounded label)."""
    found = _REPLY_CODE.match(reply[:5])
    return f"{found.group(1)}xx" if found else "other"


def start_metrics_server(settings: MetricsEndpoint, registry: CollectorRegistry = REGISTRY) -> int | None:
    """Serve `/metrics` on `metrics_host:metrics_port` in a daemon thread; the port, or None when off (0).

    A port that cannot be bound fails the start, like the service's own port: a lab whose metrics
    silently vanished would look healthy."""
    if not settings.metrics_port:
        return None
    # A `_created` series beside every counter doubles the series and tells Prometheus nothing it uses.
    disable_created_metrics()
    server, _thread = start_http_server(settings.metrics_port, settings.metrics_host, registry)
    port = int(server.server_port)
    log.info("metrics listening", extra={"host": settings.metrics_host, "port": port})
    return port
