"""The domains we receive mail for, from the auth service, cached for a short while.

A refresh that fails keeps the last good list (an auth outage should not turn local mail into relaying
or into rejections); with no list at all the caller gets `AuthUnavailable` and answers 4xx.
"""

import asyncio
import logging
import time

from shared.auth_client import AuthUnavailable
from shared.auth_protocols import DomainDirectory

log = logging.getLogger(__name__)


class LocalDomains:
    def __init__(self, auth: DomainDirectory, refresh_s: float) -> None:
        self._auth = auth
        self._refresh_s = refresh_s
        self._domains: frozenset[str] | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def contains(self, domain: str) -> bool:
        return domain.lower().rstrip(".") in await self.get()

    async def get(self) -> frozenset[str]:
        if self._domains is not None and time.monotonic() - self._fetched_at < self._refresh_s:
            return self._domains
        async with self._lock:  # one refresh at a time; the others use its result
            if self._domains is not None and time.monotonic() - self._fetched_at < self._refresh_s:
                return self._domains
            try:
                domains = await self._auth.domains()
            except AuthUnavailable as exc:
                if self._domains is None:
                    raise
                log.warning(
                    "local domains refresh failed, keeping the cached list", extra={"error": str(exc)}
                )
                self._fetched_at = time.monotonic()
                return self._domains
            self._domains = frozenset(d.lower().rstrip(".") for d in domains)
            self._fetched_at = time.monotonic()
            return self._domains
