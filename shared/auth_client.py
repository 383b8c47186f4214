"""Client for the user-auth service's internal API, used by submission, MX, delivery, relay and POP3.

The contract (served by `services.auth`), all with `Authorization: Bearer <YUBIN_SERVICE_TOKEN>`:
- `POST /internal/v1/verify` with `VerifyRequest` → `VerifyResult` (200 whether or not the login is good).
- `GET /internal/v1/recipients/{address}` → `RecipientInfo` (`exists: false` for an unknown address).
- `GET /internal/v1/domains` → `DomainList` (the local domains).

Connection errors are retried a few times with backoff (the auth service may be restarting); any other
failure raises `AuthUnavailable`, which callers answer with a temporary error (SMTP 4xx, POP3 [SYS/TEMP]).

One `httpx.AsyncClient` per `AuthClient`: its connections are kept alive and reused, so a lookup costs one
request on an open connection, not a TCP handshake.

Recipient and domain answers are cached for `auth_cache_ttl_s` (positive and negative alike, at most
`auth_cache_max_entries` addresses, least recently used evicted first), like Postfix's proxymap in front
of a directory: the MX asks once per RCPT and delivery once per recipient, and in a burst that is the same
few addresses hundreds of times a second. Concurrent lookups of the same key share one request
(single-flight), so a burst after an expiry does not stampede the auth service. Failures are not cached.
The price is staleness of at most the TTL: a user deleted or disabled a moment ago may still be accepted
by the MX (delivery then bounces it 5.1.1, or, with its own cached answer, delivers it), a new user may
still be refused for that long, a quota change applies that much later. Logins (`verify`) are never
cached: a changed password or a disabled account takes effect at once, and throttling sees every attempt.
"""

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Generic, TypeVar
from urllib.parse import quote

import httpx

from shared.config import AuthClientSettings
from shared.models import DomainList, RecipientInfo, VerifyRequest, VerifyResult

RETRIES = 3

T = TypeVar("T")


class AuthUnavailable(Exception):
    """The auth service could not give an answer; the caller should fail temporarily."""


class LookupCache(Generic[T]):
    """Answers by key for `ttl_s` seconds, at most `max_entries` of them (LRU), with single-flight fetches."""

    def __init__(self, ttl_s: float, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._answers: OrderedDict[str, tuple[float, T]] = OrderedDict()  # key → (expires at, answer)
        self._in_flight: dict[str, asyncio.Future[T]] = {}

    def __len__(self) -> int:
        return len(self._answers)

    def cached(self, key: str) -> tuple[bool, T | None]:
        hit = self._answers.get(key)
        if hit is None:
            return False, None
        if hit[0] <= self._clock():
            del self._answers[key]
            return False, None
        self._answers.move_to_end(key)
        return True, hit[1]

    def store(self, key: str, answer: T) -> None:
        if self.ttl_s <= 0:
            return
        self._answers[key] = (self._clock() + self.ttl_s, answer)
        self._answers.move_to_end(key)
        while len(self._answers) > self.max_entries:
            self._answers.popitem(last=False)

    async def get(self, key: str, fetch: Callable[[], Awaitable[T]]) -> T:
        found, answer = self.cached(key)
        if found:
            return answer  # type: ignore[return-value]
        flight = self._in_flight.get(key)
        if flight is None:
            flight = asyncio.ensure_future(self._fetch(key, fetch))
            # Mark a failure as seen even if every waiter has gone (no "exception never retrieved").
            flight.add_done_callback(lambda done: done.cancelled() or done.exception())
            self._in_flight[key] = flight
        # Shielded: one waiter giving up (its session closed) must not cancel the lookup the others wait for.
        return await asyncio.shield(flight)

    async def _fetch(self, key: str, fetch: Callable[[], Awaitable[T]]) -> T:
        try:
            answer = await fetch()
            self.store(key, answer)
            return answer
        finally:
            del self._in_flight[key]


class AuthClient:
    def __init__(
        self, settings: AuthClientSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=settings.auth_url.rstrip("/"),
            headers={"Authorization": f"Bearer {settings.service_token.get_secret_value()}"},
            timeout=settings.auth_timeout_s,
            transport=transport,
        )
        self._recipients: LookupCache[RecipientInfo] = LookupCache(
            settings.auth_cache_ttl_s, settings.auth_cache_max_entries
        )
        self._domains: LookupCache[list[str]] = LookupCache(settings.auth_cache_ttl_s, 1)

    async def __aenter__(self) -> "AuthClient":
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, json: dict | None = None) -> httpx.Response:
        delay = 0.1
        for attempt in range(RETRIES):
            try:
                response = await self._http.request(method, path, json=json)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as exc:
                if attempt == RETRIES - 1:
                    raise AuthUnavailable(f"auth service unreachable: {exc}") from exc
                await asyncio.sleep(delay)
                delay *= 3
                continue
            except httpx.HTTPError as exc:
                # The class name too: httpx's timeouts and resets often carry no text at all.
                raise AuthUnavailable(f"auth service request failed: {type(exc).__name__}: {exc}") from exc
            if response.status_code != 200:
                raise AuthUnavailable(f"auth service answered {response.status_code}: {response.text[:200]}")
            return response
        raise AssertionError("unreachable")

    async def verify(self, username: str, password: str, service: str, client_ip: str | None) -> VerifyResult:
        """Never cached (see the module docstring)."""
        request = VerifyRequest(username=username, password=password, service=service, client_ip=client_ip)
        response = await self._request("POST", "/internal/v1/verify", json=request.model_dump())
        return VerifyResult.model_validate_json(response.content)

    async def recipient(self, address: str) -> RecipientInfo:
        """Cached; the answer is shared by the callers, so treat it as read-only."""
        return await self._recipients.get(address, lambda: self._fetch_recipient(address))

    async def domains(self) -> list[str]:
        """Cached; a copy, so callers may keep or change it."""
        return list(await self._domains.get("", self._fetch_domains))

    async def _fetch_recipient(self, address: str) -> RecipientInfo:
        response = await self._request("GET", f"/internal/v1/recipients/{quote(address, safe='@')}")
        return RecipientInfo.model_validate_json(response.content)

    async def _fetch_domains(self) -> list[str]:
        response = await self._request("GET", "/internal/v1/domains")
        return DomainList.model_validate_json(response.content).domains
