"""The console's web server: the page, its JSON API, and the live event stream (server-sent events).

Everything under `/api/` but login needs a session; actions (POST, DELETE) also need the console's own
header (see sessions.py). Answers are JSON only: the page puts every value into the DOM as text.
"""

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response, status
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from yubin.console.feed import Feed
from yubin.console.rates import Rates
from yubin.console.scrape import Scraper
from yubin.console.security import SecurityHeaders
from yubin.console.send import SendRefused, check, compose, submit
from yubin.console.sessions import COOKIE, CSRF_HEADER, Sessions
from yubin.console.settings import ConsoleSettings
from yubin.console.timeline import dsn_queue_ids, merge, subject_of, summarize, timeline
from yubin.console.upstream import SiteClient, UpstreamError

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
STATS_EVERY_S = 2.0
# Ids the console passes on to a site's admin API: queue ids, dead-letter and fault ids, no paths.
ID = r"^[A-Za-z0-9._:@+=-]{1,200}$"
MAX_QUERY = 300
FAILED_LOGIN_PAUSE_S = 1.0


class Login(BaseModel):
    secret: str = Field(max_length=512)


class Outgoing(BaseModel):
    sender: str = Field(max_length=254)
    to: str = Field(max_length=2000)
    subject: str = Field("", max_length=1000)
    body: str = Field("", max_length=40_000)


class FaultIn(BaseModel):
    kind: Literal["smtp-reply", "drop", "delay", "dns-servfail"]
    share: float = Field(1.0, ge=0, le=1)
    reply: str | None = Field(None, max_length=500)
    delay_s: float | None = Field(None, ge=0, le=600)
    domain: str | None = Field(None, max_length=253)
    stage: str | None = Field(None, max_length=20)
    expires_in_s: int = Field(600, ge=1, le=86_400)


class Console:
    """What the routes share: settings, one client per site, the live feed, the sessions."""

    def __init__(self, settings: ConsoleSettings, password: str) -> None:
        self.settings = settings
        self.endpoints = settings.endpoints()
        self.clients = {e.domain: SiteClient(e, settings.upstream_timeout_s) for e in self.endpoints}
        self.feed = Feed(list(self.clients.values()))
        self.rates = Rates(self.feed.sites)
        self.scraper = Scraper(settings.metrics, self.rates, settings.metrics_interval_s)
        tokens = [e.admin_token.get_secret_value() for e in self.endpoints]
        self.sessions = Sessions([password, *tokens], settings.session_ttl_s)
        self.login_lock = asyncio.Lock()

    def map_stats(self) -> dict[str, dict[str, Any]]:
        """The map's figures: rates and queue depths from the services' metrics, and the one figure only
        the trace has (the mailbox's stored-not-retrieved)."""
        stats = self.rates.snapshot(time.monotonic())
        for key, waiting in self.feed.stats.snapshot().items():
            if key in stats:
                stats[key]["depth"] = waiting
                stats[key]["depth_from"] = "trace"
        return stats

    def client(self, site: str) -> SiteClient:
        if site not in self.clients:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such site")
        return self.clients[site]

    async def each_site(self, call) -> tuple[list[Any], dict[str, str]]:
        """`call(client)` at every site at once: the answers, and the error of each site that failed."""
        results = await asyncio.gather(*(call(c) for c in self.clients.values()), return_exceptions=True)
        answers, errors = [], {}
        for client, result in zip(self.clients.values(), results, strict=True):
            if isinstance(result, UpstreamError):
                errors[client.domain] = str(result)
            elif isinstance(result, BaseException):
                raise result
            else:
                answers.append(result)
        return answers, errors


def get_console(request: Request) -> Console:
    return request.app.state.console


ConsoleDep = Annotated[Console, Depends(get_console)]


def require_session(request: Request, console: ConsoleDep) -> None:
    if not console.sessions.valid(request.cookies.get(COOKIE)):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "log in first")


def require_action_header(request: Request) -> None:
    """A page of another origin can make the browser send a form, not set this header (nor, with
    SameSite=Strict, the cookie); an Origin, when sent, must be the console's own."""
    if request.headers.get(CSRF_HEADER) != "1":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing the console's request header")
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.headers.get('host', '')}":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "request from another origin")


Session = Depends(require_session)
Action = [Depends(require_session), Depends(require_action_header)]


def create_app(settings: ConsoleSettings, password: str) -> FastAPI:
    console = Console(settings, password)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        console.feed.start()
        console.scraper.start()
        yield
        await console.scraper.stop()
        await console.feed.stop()
        for client in console.clients.values():
            await client.aclose()

    app = FastAPI(title="Yubin console", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.console = console
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(UpstreamError)
    async def upstream_error(request: Request, exc: UpstreamError) -> JSONResponse:
        code = exc.status if exc.status in (400, 404, 409, 422) else status.HTTP_502_BAD_GATEWAY
        return JSONResponse({"detail": str(exc)}, status_code=code)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/login", dependencies=[Depends(require_action_header)])
    async def login(body: Login, response: Response) -> dict[str, bool]:
        if not console.sessions.check_secret(body.secret):
            log.warning("console login refused")
            # One refused login at a time, each taking a second: guessing is slow.
            async with console.login_lock:
                await asyncio.sleep(FAILED_LOGIN_PAUSE_S)
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong password or token")
        response.set_cookie(
            COOKIE,
            console.sessions.create(),
            max_age=settings.session_ttl_s,
            httponly=True,
            samesite="strict",
            path="/",
        )
        log.info("console login")
        return {"ok": True}

    @app.post("/api/logout", dependencies=[Depends(require_action_header)])
    async def logout(request: Request, response: Response) -> dict[str, bool]:
        console.sessions.end(request.cookies.get(COOKIE))
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return {"ok": True}

    @app.get("/api/session")
    async def session(request: Request) -> dict[str, bool]:
        return {"logged_in": console.sessions.valid(request.cookies.get(COOKIE))}

    @app.get("/api/overview", dependencies=[Session])
    async def overview() -> dict[str, Any]:
        return {
            "sites": console.feed.sites,
            "users": [address for e in console.endpoints for address in e.users],
            "status": console.feed.status,
            "stats": console.map_stats(),
            "recent": list(console.feed.recent)[-40:],
        }

    @app.get("/api/events", dependencies=[Session])
    async def events(request: Request) -> StreamingResponse:
        queue = console.feed.subscribe()

        async def stream() -> AsyncIterator[str]:
            loop = asyncio.get_running_loop()
            try:
                yield "retry: 2000\n\n"
                stats_due = loop.time()
                while queue in console.feed.subscribers and not await request.is_disconnected():
                    if loop.time() >= stats_due:
                        # Also while events flow: the rates change with them.
                        snapshot = {"stats": console.map_stats(), "status": console.feed.status}
                        yield sse("stats", snapshot)
                        stats_due = loop.time() + STATS_EVERY_S
                    try:
                        event = await asyncio.wait_for(queue.get(), max(0.05, stats_due - loop.time()))
                    except TimeoutError:
                        continue
                    yield sse("trace", event)
            finally:
                console.feed.unsubscribe(queue)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"}
        )

    @app.get("/api/messages", dependencies=[Session])
    async def messages(q: Annotated[str, Query(max_length=MAX_QUERY)] = "") -> dict[str, Any]:
        q = q.strip()
        if not q:
            return {"messages": summarize(list(console.feed.recent)), "errors": {}}
        batches, errors = await console.each_site(lambda c: search(c, q))
        found = [console.feed.with_subject(e) for e in merge(*batches)]
        return {"messages": summarize(found), "errors": errors}

    @app.get("/api/message", dependencies=[Session])
    async def message(id: Annotated[str, Query(min_length=1, max_length=MAX_QUERY)]) -> dict[str, Any]:
        return await journey(console, id.strip())

    @app.get("/api/queues", dependencies=[Session])
    async def queues() -> dict[str, Any]:
        async def one(client: SiteClient) -> dict[str, Any]:
            deferred, dead = await asyncio.gather(
                client.request("GET", "/v1/queue/deferred"),
                client.request("GET", "/v1/queue/dead"),
            )
            return {"site": client.domain, "deferred": deferred, "dead": dead}

        answers, errors = await console.each_site(one)
        return {"sites": answers, "errors": errors}

    @app.post("/api/queues/{site}/deferred/{queue_id}/{verb}", dependencies=Action)
    async def deferred_action(
        site: str, queue_id: Annotated[str, PathParam(pattern=ID)], verb: Literal["retry", "bounce"]
    ) -> Any:
        log.info("console queue action", extra={"site": site, "queue_id": queue_id, "action": verb})
        return await console.client(site).request("POST", f"/v1/queue/deferred/{queue_id}/{verb}")

    @app.delete("/api/queues/{site}/deferred/{queue_id}", dependencies=Action)
    async def deferred_delete(site: str, queue_id: Annotated[str, PathParam(pattern=ID)]) -> Any:
        log.info("console queue action", extra={"site": site, "queue_id": queue_id, "action": "delete"})
        return await console.client(site).request("DELETE", f"/v1/queue/deferred/{queue_id}")

    @app.post("/api/queues/{site}/dead/{dead_id}/retry", dependencies=Action)
    async def dead_retry(site: str, dead_id: Annotated[str, PathParam(pattern=ID)]) -> Any:
        log.info("console dead-letter action", extra={"site": site, "dead_id": dead_id, "action": "retry"})
        return await console.client(site).request("POST", f"/v1/queue/dead/{dead_id}/retry")

    @app.delete("/api/queues/{site}/dead/{dead_id}", dependencies=Action)
    async def dead_delete(site: str, dead_id: Annotated[str, PathParam(pattern=ID)]) -> Any:
        log.info("console dead-letter action", extra={"site": site, "dead_id": dead_id, "action": "delete"})
        return await console.client(site).request("DELETE", f"/v1/queue/dead/{dead_id}")

    @app.get("/api/faults", dependencies=[Session])
    async def faults() -> dict[str, Any]:
        async def one(client: SiteClient) -> dict[str, Any]:
            return {"site": client.domain, "faults": await client.request("GET", "/v1/faults")}

        answers, errors = await console.each_site(one)
        return {"sites": answers, "errors": errors}

    @app.post("/api/faults/{site}", dependencies=Action)
    async def add_fault(site: str, fault: FaultIn) -> Any:
        log.info("console fault added", extra={"site": site, "fault": fault.model_dump()})
        return await console.client(site).request(
            "POST", "/v1/faults", json=fault.model_dump(exclude_none=True)
        )

    @app.delete("/api/faults/{site}/{fault_id}", dependencies=Action)
    async def remove_fault(site: str, fault_id: Annotated[str, PathParam(pattern=ID)]) -> Any:
        log.info("console fault removed", extra={"site": site, "fault_id": fault_id})
        return await console.client(site).request("DELETE", f"/v1/faults/{fault_id}")

    @app.post("/api/send", dependencies=Action)
    async def send(outgoing: Outgoing) -> dict[str, str]:
        recipients = [r.strip() for r in outgoing.to.split(",") if r.strip()]
        try:
            site = check(outgoing.sender, recipients, outgoing.subject, outgoing.body, console.endpoints)
        except SendRefused as exc:
            raise HTTPException(422, str(exc)) from exc
        message = compose(outgoing.sender, recipients, outgoing.subject, outgoing.body)
        # Before submitting: the accepted event can reach the console before the server's 250 does.
        console.feed.remember_subject(str(message["Message-ID"]), outgoing.subject)
        try:
            reply = await submit(site, outgoing.sender, message, settings.upstream_timeout_s)
        except Exception as exc:  # aiosmtplib's errors and OSError: the form shows the server's answer
            log.warning("console send failed", extra={"error": str(exc)})
            raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"submission refused: {exc}") from exc
        log.info("console sent", extra={"message_id": message["Message-ID"], "sender": outgoing.sender})
        return {"message_id": str(message["Message-ID"]), "reply": reply}

    return app


def sse(kind: str, data: dict[str, Any]) -> str:
    # json.dumps escapes newlines, so one event is one data line whatever the mail contained.
    return f"event: {kind}\ndata: {json.dumps(data, default=str)}\n\n"


async def search(client: SiteClient, q: str) -> list[dict[str, Any]]:
    """A site's events matching a Message-ID, a queue id or an address."""
    if "@" not in q:
        return await client.trace(queue_id=q)
    found = await asyncio.gather(
        client.trace(message_id=normalize_message_id(q)), client.trace(address=q.strip("<>"))
    )
    return merge(*found)


def normalize_message_id(value: str) -> str:
    value = value.strip()
    return value if value.startswith("<") else f"<{value}>"


async def journey(console: Console, wanted: str) -> dict[str, Any]:
    """Every event of the message named by a Message-ID or queue id, at every site, with its DSNs."""
    if "@" in wanted:
        message_ids = {normalize_message_id(wanted)}
        first: list[dict[str, Any]] = []
    else:
        batches, _ = await console.each_site(lambda c: c.trace(queue_id=wanted))
        first = merge(*batches)
        message_ids = {e["message_id"] for e in first if e.get("message_id")}
    events = list(first)
    errors: dict[str, str] = {}
    for message_id in sorted(message_ids):
        batches, failed = await console.each_site(lambda c, m=message_id: c.trace(message_id=m))
        events = merge(events, *batches)
        errors.update(failed)
    # The DSNs this message caused: their own queue ids (and Message-IDs) at the site that wrote them.
    dsn_ids: set[str] = set()
    dsn_messages: set[str] = set()
    for site, queue_id in dsn_queue_ids(events):
        if site not in console.clients:
            continue
        dsn_ids.add(queue_id)
        notice = await console.clients[site].trace(queue_id=queue_id)
        dsn_messages |= {e["message_id"] for e in notice if e.get("message_id")}
        events = merge(events, notice)
    for message_id in sorted(dsn_messages - message_ids):
        batches, failed = await console.each_site(lambda c, m=message_id: c.trace(message_id=m))
        events = merge(events, *batches)
        errors.update(failed)
    if not events and not errors:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no trace events for this message")
    return {
        "message_ids": sorted(message_ids),
        "subject": subject_of(events, message_ids)
        or next((console.feed.subjects[m] for m in message_ids if m in console.feed.subjects), None),
        "events": timeline(events, dsn_messages, dsn_ids, message_ids),
        "errors": errors,
    }
