"""One site's admin API as the console uses it: trace queries and stream, queues, faults.

The admin token stays here, on the server side; the page talks to the console only.
"""

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from yubin.console.settings import SiteEndpoint

# A trace query the console makes at most returns this many events per site.
TRACE_LIMIT = 1000


class UpstreamError(RuntimeError):
    """A site's admin API did not answer, or answered with an error (its status is kept)."""

    def __init__(self, domain: str, message: str, status: int = 502) -> None:
        super().__init__(f"{domain}: {message}")
        self.domain = domain
        self.status = status


class SiteClient:
    def __init__(self, endpoint: SiteEndpoint, timeout: float) -> None:
        self.endpoint = endpoint
        self.domain = endpoint.domain
        self.http = httpx.AsyncClient(
            base_url=endpoint.admin.rstrip("/"),
            headers={"Authorization": f"Bearer {endpoint.admin_token.get_secret_value()}"},
            timeout=timeout,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise UpstreamError(self.domain, f"admin API unreachable ({type(exc).__name__})") from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.reason_phrase)
            except (ValueError, AttributeError):
                detail = response.reason_phrase
            raise UpstreamError(self.domain, str(detail), response.status_code)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    async def trace(self, **query: str | int) -> list[dict[str, Any]]:
        params = {k: v for k, v in query.items() if v not in (None, "")}
        params.setdefault("limit", TRACE_LIMIT)
        answer = await self.request("GET", "/v1/trace", params=params)
        return [{**event, "site": self.domain} for event in answer.get("events", [])]

    async def latest(self, count: int) -> tuple[list[dict[str, Any]], str | None]:
        """The newest `count` events (oldest first) and the id to stream on from (None: no events yet)."""
        answer = await self.request("GET", "/v1/trace", params={"limit": count, "last": "true"})
        events = [{**event, "site": self.domain} for event in answer.get("events", [])]
        return events, (events[-1].get("id") if events else None)

    async def stream(self, since: str | None) -> AsyncIterator[tuple[str | None, dict[str, Any]]]:
        """The site's new trace events as they happen: (SSE id, event)."""
        params = {"since": since} if since else {}
        async with self.http.stream(
            "GET", "/v1/trace/stream", params=params, timeout=httpx.Timeout(None, connect=5.0)
        ) as response:
            if response.status_code != 200:
                raise UpstreamError(self.domain, f"trace stream answered {response.status_code}")
            event_id: str | None = None
            data: list[str] = []
            async for line in response.aiter_lines():
                if line == "":
                    if data:
                        yield event_id, {**json.loads("\n".join(data)), "site": self.domain}
                    event_id, data = None, []
                elif line.startswith(":"):
                    continue  # a keep-alive comment
                else:
                    field, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if field == "id":
                        event_id = value
                    elif field == "data":
                        data.append(value)
