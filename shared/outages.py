"""Which failures are outages: the one place that tells a dependency being down from an entry being broken.

A consumer's handler that raises leaves its stream entry to be tried again. What happens next depends on
why it raised:
- an *outage* (Redis, the auth service, DNS, a socket, the disk) says nothing about the entry: the same
  entry will succeed once the dependency is back. The bus retries it with backoff for as long as it takes
  and never counts it toward the dead-letter limit;
- anything else (a bug, data the code cannot handle) would fail the same way every time: after
  `bus_max_deliveries` such failures the entry goes to the dead-letter stream, logged at error level.

Handlers that catch a dependency's errors themselves and turn them into a per-recipient outcome (the
relay defers a recipient whose MX is down, delivery defers a recipient whose user lookup failed) never
reach this: it is for what escapes a handler.
"""

import re

import aiosmtplib
import dns.exception
import dns.resolver
import httpx
from redis.exceptions import (
    BusyLoadingError,
    ExecAbortError,
    ReadOnlyError,
    ResponseError,
)
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)

from shared.auth_client import AuthUnavailable
from shared.redis_client import NotReplicated

_OUTAGES: tuple[type[BaseException], ...] = (
    OSError,  # sockets, timeouts (TimeoutError is one), a full or failing disk
    RedisConnectionError,
    RedisTimeoutError,
    BusyLoadingError,  # Redis is loading its AOF after a restart
    ReadOnlyError,
    NotReplicated,  # a replicated Redis whose replicas did not confirm a write in time (docs/ha.md)
    AuthUnavailable,
    httpx.TransportError,
    dns.exception.Timeout,
    dns.resolver.NoNameservers,  # SERVFAIL from every server
    aiosmtplib.SMTPConnectError,
    aiosmtplib.SMTPServerDisconnected,
    aiosmtplib.SMTPTimeoutError,
)

# Redis answers these while it cannot serve writes for a while (memory full under noeviction, a script
# running too long, failover): the same command succeeds later.
_REDIS_BUSY_PREFIXES = ("OOM", "BUSY", "LOADING", "TRYAGAIN", "MASTERDOWN", "NOREPLICAS", "READONLY")


def is_outage(exc: BaseException) -> bool:
    """True if `exc`, or what it was raised from, is a dependency being unavailable.

    Only explicit causes (`raise ... from`) count: a bug raised while handling an outage is still a bug.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _OUTAGES):
            return True
        if isinstance(current, (ResponseError, ExecAbortError)) and _redis_busy(current):
            return True
        current = current.__cause__
    return False


# redis-py reports a command Redis refused inside MULTI as "Command # 1 (SET ...) of pipeline caused error:
# ('NOREPLICAS Not enough good replicas to write.',)", raised from the EXECABORT.
_PIPELINE_ERROR = re.compile(r"of pipeline caused error: \(?['\"]?-?([A-Z]+)")


def _redis_busy(exc: BaseException) -> bool:
    text = str(exc).lstrip("-")
    # EXECABORT carries the error that made Redis refuse to queue a command, e.g. "... OOM command not allowed".
    if text.startswith(_REDIS_BUSY_PREFIXES) or "OOM command not allowed" in text:
        return True
    queued = _PIPELINE_ERROR.search(text)
    return queued is not None and queued.group(1) in _REDIS_BUSY_PREFIXES


def describe(exc: BaseException) -> str:
    """A short reason for logs and dead letters (some exceptions, e.g. httpx timeouts, carry no text)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
