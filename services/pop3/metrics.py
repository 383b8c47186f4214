"""The POP3 server's metrics (docs/metrics.md)."""

from prometheus_client import Counter, Gauge

from shared.metrics import NAMESPACE

CONNECTS = Counter("pop3_connects", "POP3 connections accepted, refused ones included.", namespace=NAMESPACE)
SESSIONS = Gauge("pop3_sessions", "POP3 sessions open now.", namespace=NAMESPACE)
LOGINS = Counter(
    "pop3_logins",
    "POP3 logins (USER/PASS and AUTH) by result: ok, failed, throttled, unavailable (auth service down).",
    ["result"],
    namespace=NAMESPACE,
)
RETRIEVALS = Counter(
    "pop3_retrievals", "Messages sent to a client, by command (RETR, TOP).", ["command"], namespace=NAMESPACE
)
RETRIEVED_BYTES = Counter(
    "pop3_retrieved_bytes", "Octets of the messages retrieved with RETR.", namespace=NAMESPACE
)

for _result in ("ok", "failed", "throttled", "unavailable"):  # every series exists from the start
    LOGINS.labels(_result)
for _command in ("RETR", "TOP"):
    RETRIEVALS.labels(_command)
