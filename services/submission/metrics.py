"""The SMTP listener's metrics (submission and MX alike, told apart by the `role` label; docs/metrics.md)."""

from prometheus_client import Counter, Gauge

from shared.metrics import NAMESPACE, code_class

CONNECTS = Counter(
    "smtpd_connects", "SMTP connections accepted, refused ones included.", ["role"], namespace=NAMESPACE
)
SESSIONS = Gauge("smtpd_sessions", "SMTP sessions open now.", ["role"], namespace=NAMESPACE)
REPLIES = Counter(
    "smtpd_replies",
    "SMTP replies sent, by code class (2xx ... 5xx).",
    ["role", "code_class"],
    namespace=NAMESPACE,
)
MESSAGES = Counter(
    "smtpd_messages_accepted", "Messages accepted (250 after DATA: stored).", ["role"], namespace=NAMESPACE
)
BYTES = Counter(
    "smtpd_accepted_bytes",
    "Octets of the messages accepted, as the client sent them.",
    ["role"],
    namespace=NAMESPACE,
)


def replied(role: str, reply: str) -> None:
    REPLIES.labels(role, code_class(reply)).inc()


def accepted(role: str, size: int) -> None:
    MESSAGES.labels(role).inc()
    BYTES.labels(role).inc(size)
