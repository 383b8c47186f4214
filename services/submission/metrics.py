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


# `labels()` looks the child up anew on every call (a lock, a tuple, a dict): about six replies per message
# made it a visible share of the MX's CPU. The children, once found, are kept (a bounded set: 2 roles by
# 5 code classes).
_replies: dict[tuple[str, str], Counter] = {}
_accepted: dict[str, tuple[Counter, Counter]] = {}


def replied(role: str, reply: str) -> None:
    key = (role, code_class(reply))
    child = _replies.get(key)
    if child is None:
        child = _replies[key] = REPLIES.labels(*key)
    child.inc()


def accepted(role: str, size: int) -> None:
    children = _accepted.get(role)
    if children is None:
        children = _accepted[role] = (MESSAGES.labels(role), BYTES.labels(role))
    children[0].inc()
    children[1].inc(size)
