"""The site's own domains, from the auth service: a bounce to one of them goes to local delivery."""

import logging
import time

from shared.auth_client import AuthClient, AuthUnavailable

log = logging.getLogger(__name__)


class LocalDomains:
    """A cached `AuthClient.domains()`. When a refresh fails the last known list is used; with none,
    `AuthUnavailable` propagates and the handler fails (its entry is retried later)."""

    def __init__(self, auth: AuthClient, ttl_s: float) -> None:
        self.auth = auth
        self.ttl_s = ttl_s
        self._domains: set[str] | None = None
        self._fetched_at = 0.0

    async def get(self) -> set[str]:
        if self._domains is None or time.monotonic() - self._fetched_at >= self.ttl_s:
            try:
                self._domains = {d.lower() for d in await self.auth.domains()}
                self._fetched_at = time.monotonic()
            except AuthUnavailable as exc:
                if self._domains is None:
                    raise
                log.warning(
                    "auth service unavailable, using the cached local domains", extra={"error": str(exc)}
                )
        return self._domains
