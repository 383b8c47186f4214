"""Client for the user-auth service's internal API, used by submission, MX, delivery and POP3.

The contract (served by `services.auth`), all with `Authorization: Bearer <YUBIN_SERVICE_TOKEN>`:
- `POST /internal/v1/verify` with `VerifyRequest` → `VerifyResult` (200 whether or not the login is good).
- `GET /internal/v1/recipients/{address}` → `RecipientInfo` (`exists: false` for an unknown address).
- `GET /internal/v1/domains` → `DomainList` (the local domains).

Connection errors are retried a few times with backoff (the auth service may be restarting); any other
failure raises `AuthUnavailable`, which callers answer with a temporary error (SMTP 4xx, POP3 [SYS/TEMP]).
"""

import asyncio
from types import TracebackType
from urllib.parse import quote

import httpx

from shared.config import AuthClientSettings
from shared.models import DomainList, RecipientInfo, VerifyRequest, VerifyResult

RETRIES = 3


class AuthUnavailable(Exception):
    """The auth service could not give an answer; the caller should fail temporarily."""


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
                raise AuthUnavailable(f"auth service request failed: {exc}") from exc
            if response.status_code != 200:
                raise AuthUnavailable(f"auth service answered {response.status_code}: {response.text[:200]}")
            return response
        raise AssertionError("unreachable")

    async def verify(self, username: str, password: str, service: str, client_ip: str | None) -> VerifyResult:
        request = VerifyRequest(username=username, password=password, service=service, client_ip=client_ip)
        response = await self._request("POST", "/internal/v1/verify", json=request.model_dump())
        return VerifyResult.model_validate_json(response.content)

    async def recipient(self, address: str) -> RecipientInfo:
        response = await self._request("GET", f"/internal/v1/recipients/{quote(address, safe='@')}")
        return RecipientInfo.model_validate_json(response.content)

    async def domains(self) -> list[str]:
        response = await self._request("GET", "/internal/v1/domains")
        return DomainList.model_validate_json(response.content).domains
