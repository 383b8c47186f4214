"""Admin API: the site's trace events, as pages (`GET /v1/trace`) and live (`GET /v1/trace/stream`, SSE).

A reader needs only the admin token, not the site's Redis. The reading is in `services.auth.trace_log`;
the live streams are counted and ended here (`TraceStreams`).
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from redis.exceptions import RedisError
from starlette.types import Receive, Scope, Send

from services.auth.deps import PartsDep, require_admin
from services.auth.trace_log import STREAM_ID, TraceFilter, last_id, read_after, read_last, read_page

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/trace", tags=["trace"], dependencies=[Depends(require_admin)])

PAGE_DEFAULT = 200
PAGE_MAX = 1000
ID_MAX = 998  # a Message-ID header line, at most
MAX_STREAMS = 16
"""Live streams open at once; each holds a Redis connection in a blocking read."""
HEARTBEAT_S = 15.0
"""A comment line this often when nothing happens, so proxies and browsers keep the stream open."""
POLL_MS = 1000
"""One blocking read waits at most this long, so a stream notices shutdown and disconnects quickly."""
GATHER_S = 0.2
"""After sending events, wait this long before reading again: under load the events then go out in a few
large writes instead of one small write each, which cost both ends most of their CPU (a reader sees an
event at most this much later)."""
RETRY_MS = 3000


class TraceEventOut(BaseModel):
    id: str = Field(description="The event's id in the trace stream: pass it as `since` to read on.")
    queue_id: str = Field(description="The message's queue id at this site ('' when not known).")
    message_id: str | None = Field(None, description="The message's Message-ID, when known.")
    service: str = Field(description="submission, mx, relay, delivery, pop3, admin ...")
    event: str = Field(description="accepted, attempt, delivered, deferred, bounce, stored, retrieved ...")
    at: datetime
    detail: dict[str, Any] = Field(default_factory=dict, description="Event-specific; from mail: escape it.")


class TracePage(BaseModel):
    events: list[TraceEventOut] = Field(description="Oldest first.")
    next: str | None = Field(
        description="Where to go on (as `since`): more may match after it. Null at the end of the stream."
    )


class TraceStreams:
    """The live streams of one app: at most `limit` at once, all ended by `close` (shutdown)."""

    def __init__(self, limit: int = MAX_STREAMS) -> None:
        self.limit = limit
        self.open = 0
        self.closing = asyncio.Event()

    def acquire(self) -> bool:
        if self.open >= self.limit or self.closing.is_set():
            return False
        self.open += 1
        return True

    def release(self) -> None:
        self.open -= 1

    def close(self) -> None:
        self.closing.set()


class _CountedStream(StreamingResponse):
    """Gives its slot back however the response ends: finished, cancelled, or never started."""

    def __init__(self, content: AsyncIterator[str], release: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


IdQuery = Annotated[str | None, Query(max_length=ID_MAX)]
SinceQuery = Annotated[
    str | None,
    Query(
        pattern=STREAM_ID.pattern,
        max_length=41,
        description="A stream id: only events after it (e.g. the `next` of the previous page).",
    ),
]


def _filter(queue_id: str | None, message_id: str | None, address: str | None) -> TraceFilter:
    return TraceFilter(queue_id=queue_id or None, message_id=message_id or None, address=address or None)


@router.get("", summary="Trace events, oldest first; filters combine")
async def list_events(
    parts: PartsDep,
    message_id: Annotated[str | None, Query(max_length=ID_MAX, description="With or without <>.")] = None,
    queue_id: IdQuery = None,
    address: Annotated[str | None, Query(max_length=ID_MAX, description="Any address in the event.")] = None,
    since: SinceQuery = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = PAGE_DEFAULT,
    last: Annotated[
        bool,
        Query(
            description="The newest `limit` matching events instead of the oldest (still oldest first; "
            "`next` is null: new ones come after the last one returned)."
        ),
    ] = False,
) -> TracePage:
    wanted = _filter(queue_id, message_id, address)
    if last:
        records, next_id = await read_last(parts.redis, wanted, since, limit), None
    else:
        records, next_id = await read_page(parts.redis, wanted, since, limit)
    events = [TraceEventOut(id=r.id, **r.event.model_dump()) for r in records]
    return TracePage(events=events, next=next_id)


@router.get(
    "/stream",
    summary="New trace events as server-sent events (text/event-stream)",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "`id: <stream id>` and `data: <event JSON, as in GET /v1/trace>` per event; "
            "comment lines as heartbeats. Resumes after `Last-Event-ID` (or `since`); without either, "
            "starts with the next new event.",
        },
        503: {"description": "Too many streams open; try again later."},
    },
)
async def stream_events(
    request: Request,
    parts: PartsDep,
    since: SinceQuery = None,
    message_id: IdQuery = None,
    queue_id: IdQuery = None,
    address: IdQuery = None,
    last_event_id: Annotated[str | None, Header(max_length=41)] = None,
) -> StreamingResponse:
    # A browser reconnecting sends the last id it saw: that, not the URL's `since`, is where to go on.
    start = last_event_id if last_event_id and STREAM_ID.fullmatch(last_event_id) else since
    streams: TraceStreams = request.app.state.trace_streams
    if not streams.acquire():
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "too many trace streams open", headers={"Retry-After": "5"}
        )
    try:
        after = start or await last_id(parts.redis)
    except BaseException:
        streams.release()
        raise
    wanted = _filter(queue_id, message_id, address)

    async def events() -> AsyncIterator[str]:
        nonlocal after
        yield f"retry: {RETRY_MS}\n: trace stream open\n\n"
        quiet = 0.0
        # A client that goes away cancels this generator (Starlette listens for the disconnect).
        while not streams.closing.is_set():
            records, after = await read_after(parts.redis, wanted, after, POLL_MS)
            if records:
                quiet = 0.0
                yield "".join(f"id: {r.id}\ndata: {r.as_json()}\n\n" for r in records)
                await asyncio.sleep(GATHER_S)
                continue
            quiet += POLL_MS / 1000
            if quiet >= HEARTBEAT_S:
                quiet = 0.0
                yield ": heartbeat\n\n"

    async def guarded() -> AsyncIterator[str]:
        try:
            async for chunk in events():
                yield chunk
        except (RedisError, OSError) as exc:
            # The client reconnects after `retry` with Last-Event-ID and misses nothing still in the stream.
            log.warning("trace stream ended: redis unavailable", extra={"error": str(exc)})

    return _CountedStream(
        guarded(),
        streams.release,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
