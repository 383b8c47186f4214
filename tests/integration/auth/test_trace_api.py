"""The trace API (`/v1/trace`, `/v1/trace/stream`): a site's trace events without access to its Redis."""

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.bus import publish
from shared.models import TraceEvent
from shared.redis_client import connect
from shared.streams import TRACE, TRACE_MAXLEN
from tests.fixtures.auth import AuthService
from yubin.cli.main import main


def add_events(redis_url: str, *events: TraceEvent) -> list[str]:
    async def go() -> list[str]:
        redis = connect(redis_url)
        try:
            return [await publish(redis, TRACE, e, maxlen=TRACE_MAXLEN) for e in events]
        finally:
            await redis.aclose()

    return asyncio.run(go())


def event(queue_id: str, name: str, message_id: str | None = None, **detail: object) -> TraceEvent:
    return TraceEvent(queue_id=queue_id, message_id=message_id, service="test", event=name, detail=detail)


def test_filters_pages_and_links(auth_service: AuthService) -> None:
    ids = add_events(
        auth_service.redis_url,
        event("Q1", "accepted", "<m1@alpha.test>", sender="alice@alpha.test", recipients=["Bob@beta.test"]),
        event("Q2", "accepted", "<m2@alpha.test>", sender="carol@alpha.test", recipients=["dan@beta.test"]),
        event("Q1", "bounce", "<m1@alpha.test>", notice_queue_id="Q3", notice_message_id="<n3@alpha.test>"),
        event("Q3", "dsn", "<n3@alpha.test>", original_queue_id="Q1", original_message_id="<m1@alpha.test>"),
        event("Q2", "delivered", "<m2@alpha.test>", recipients={"dan@beta.test": "250 ok"}),
    )
    admin = auth_service.admin

    everything = admin.get("/v1/trace").json()
    assert [e["id"] for e in everything["events"]] == ids and everything["next"] is None
    first = everything["events"][0]
    assert first["queue_id"] == "Q1" and first["service"] == "test" and first["detail"]["sender"]

    by_queue = admin.get("/v1/trace", params={"queue_id": "Q1"}).json()["events"]
    assert [e["event"] for e in by_queue] == ["accepted", "bounce", "dsn"]  # the DSN links back to Q1
    by_message = admin.get("/v1/trace", params={"message_id": "m1@alpha.test"}).json()["events"]
    assert [e["id"] for e in by_message] == [ids[0], ids[2], ids[3]]
    by_address = admin.get("/v1/trace", params={"address": "<DAN@beta.test>"}).json()["events"]
    assert [e["id"] for e in by_address] == [ids[1], ids[4]]
    both = admin.get("/v1/trace", params={"address": "dan@beta.test", "queue_id": "Q1"}).json()
    assert both == {"events": [], "next": None}

    newest = admin.get("/v1/trace", params={"last": True, "limit": 2}).json()
    assert [e["id"] for e in newest["events"]] == ids[3:] and newest["next"] is None
    newest = admin.get("/v1/trace", params={"last": True, "limit": 2, "queue_id": "Q1"}).json()
    assert [e["id"] for e in newest["events"]] == ids[2:4]

    page = admin.get("/v1/trace", params={"limit": 2}).json()
    assert [e["id"] for e in page["events"]] == ids[:2] and page["next"] == ids[1]
    rest = admin.get("/v1/trace", params={"since": page["next"]}).json()
    assert [e["id"] for e in rest["events"]] == ids[2:] and rest["next"] is None


def test_bounds_and_token(auth_service: AuthService) -> None:
    admin = auth_service.admin
    assert admin.get("/v1/trace", params={"limit": 1001}).status_code == 422
    assert admin.get("/v1/trace", params={"limit": 0}).status_code == 422
    assert admin.get("/v1/trace", params={"since": "not-an-id"}).status_code == 422
    assert admin.get("/v1/trace", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(f"{auth_service.url}/v1/trace/stream").status_code == 401
    schema = admin.get("/openapi.json").json()
    assert "/v1/trace" in schema["paths"] and "/v1/trace/stream" in schema["paths"]
    assert "TracePage" in schema["components"]["schemas"]


def sse(lines: Iterator[str]) -> Iterator[tuple[str | None, str | None, list[str]]]:
    """(id, data, comments) per event block of a text/event-stream."""
    event_id = data = None
    comments: list[str] = []
    for line in lines:
        if line == "":
            yield event_id, data, comments
            event_id = data = None
            comments = []
        elif line.startswith(":"):
            comments.append(line[1:].strip())
        elif line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            data = line[6:]


def test_stream_sends_new_events_and_resumes(auth_service: AuthService) -> None:
    [old] = add_events(auth_service.redis_url, event("Q0", "before"))
    headers = {"Authorization": f"Bearer {auth_service.admin_token}"}
    with httpx.Client(base_url=auth_service.url, headers=headers, timeout=30.0) as client:
        with client.stream("GET", "/v1/trace/stream") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            blocks = sse(response.iter_lines())
            _, data, comments = next(blocks)  # the stream is open: from here on, new events come
            assert data is None and comments == ["trace stream open"]
            ids = add_events(auth_service.redis_url, event("Q4", "accepted", "<m4@x>", to="a@b"))
            event_id, data, _ = next(blocks)
            assert event_id == ids[0] and data is not None
            sent = json.loads(data)
            assert sent["id"] == ids[0] and sent["queue_id"] == "Q4" and sent["detail"] == {"to": "a@b"}

        # A reconnecting browser says where it was: the events after it come first.
        later = add_events(auth_service.redis_url, event("Q5", "a"), event("Q5", "b"))
        with client.stream("GET", "/v1/trace/stream", headers={"Last-Event-ID": ids[0]}) as response:
            got = [i for i, _, _ in _take(sse(response.iter_lines()), 3)][1:]
            assert got == later
        with client.stream("GET", "/v1/trace/stream", params={"since": old}) as response:
            got = [i for i, _, _ in _take(sse(response.iter_lines()), 2)][1:]
            assert got == ids
        # The same filters as a page: only Q5's events.
        with client.stream("GET", "/v1/trace/stream", params={"since": old, "queue_id": "Q5"}) as response:
            got = [i for i, _, _ in _take(sse(response.iter_lines()), 3)][1:]
            assert got == later


def _take(blocks: Iterator[tuple[str | None, str | None, list[str]]], n: int) -> list:
    return [next(blocks) for _ in range(n)]


def test_stream_count_is_bounded_and_freed(auth_service: AuthService) -> None:
    headers = {"Authorization": f"Bearer {auth_service.admin_token}"}
    clients = [httpx.Client(base_url=auth_service.url, headers=headers, timeout=30.0) for _ in range(17)]
    try:
        opened = []
        for client in clients[:16]:
            context = client.stream("GET", "/v1/trace/stream")
            response = context.__enter__()
            assert response.status_code == 200
            lines = response.iter_lines()  # kept: a line iterator dropped half-way closes the connection
            next(lines)
            opened.append((context, lines))
        assert clients[16].get("/v1/trace/stream").status_code == 503
        # A client that goes away gives its slot back.
        context, _ = opened.pop()
        context.__exit__(None, None, None)
        clients[15].close()
        for _ in range(100):
            with clients[16].stream("GET", "/v1/trace/stream") as response:
                if response.status_code == 200:
                    break
            time.sleep(0.05)
        assert response.status_code == 200
        for context, _ in opened:
            context.__exit__(None, None, None)
    finally:
        for client in clients:
            client.close()


def test_shutdown_ends_open_streams(auth_service: AuthService) -> None:
    headers = {"Authorization": f"Bearer {auth_service.admin_token}"}
    with httpx.Client(base_url=auth_service.url, headers=headers, timeout=30.0) as client:
        with client.stream("GET", "/v1/trace/stream") as response:
            lines = response.iter_lines()
            assert next(lines) == "retry: 3000"
            # SIGTERM: the stream ends cleanly and the service exits 0 (not killed after the timeout).
            assert auth_service.process.stop(timeout=10) == 0
            assert list(lines) in ([], [": trace stream open", ""])


def test_yubin_trace_reads_the_api(
    auth_service: AuthService, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_events(
        auth_service.redis_url,
        event("Q1", "accepted", "<m1@alpha.test>", sender="alice@alpha.test"),
        event("Q2", "accepted", "<other@alpha.test>"),
        event("Q1", "bounce", "<m1@alpha.test>", notice_queue_id="Q3", notice_message_id="<n3@alpha.test>"),
        event("Q3", "dsn", "<n3@alpha.test>", original_queue_id="Q1", original_message_id="<m1@alpha.test>"),
        event("Q3", "stored", "<n3@alpha.test>", recipient="alice@alpha.test", subject="\x1b[2J"),
    )
    # No Redis address in the lab info: the admin API is all `yubin trace` needs.
    site = {"admin": auth_service.url, "admin_token": auth_service.admin_token}
    info = tmp_path / "lab-info.json"
    info.write_text(json.dumps({"sites": {"alpha.test": site}}))

    capsys.readouterr()
    assert main(["trace", "--lab-info", str(info), "--json", "Q1"]) == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["queue_id"], e["event"]) for e in found] == [
        ("Q1", "accepted"),
        ("Q1", "bounce"),
        ("Q3", "dsn"),
        ("Q3", "stored"),  # the DSN's own journey, found by its Message-ID
    ]
    assert {e["site"] for e in found} == {"alpha.test"}

    assert main(["trace", "--lab-info", str(info), "--last", "2"]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 2 and "stored" in out and "\x1b" not in out
    assert main(["trace", "--lab-info", str(info), "nothing-like-it"]) != 0
