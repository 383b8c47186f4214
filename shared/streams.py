"""Names of the Redis streams and consumer groups that connect the services of one site.

Each site has its own Redis, so the names need no site prefix.
"""

LOCAL_DELIVERY = "yubin:stream:local"
"""Envelopes for recipients in our own domains; consumed by the delivery service."""

OUTBOUND = "yubin:stream:outbound"
"""Envelopes for recipients elsewhere; consumed by the relay."""

TRACE = "yubin:stream:trace"
"""Trace events (`shared.models.TraceEvent`): every step of every message, capped in length."""

DEAD_LETTER = "yubin:stream:dead"
"""Entries that failed `bus_max_deliveries` times, with the reason, for a person to look at."""

DELIVERY_GROUP = "delivery"
RELAY_GROUP = "relay"

TRACE_MAXLEN = 100_000
"""The trace stream is trimmed (approximately) to this many entries; it is for watching, not for keeping."""
