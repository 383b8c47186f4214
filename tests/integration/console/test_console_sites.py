"""The console's server against two real sites' admin APIs (auth services on real Redis servers): a
message's journey merged across both, search, the live feed, and a site that is down."""

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from shared.bus import publish
from shared.models import TraceEvent
from shared.redis_client import connect
from shared.streams import LOCAL_DELIVERY, OUTBOUND, TRACE, TRACE_MAXLEN
from tests.fixtures.auth import AuthService, start_auth_service
from tests.fixtures.ports import free_port
from tests.integration.auth.test_deferred_queue import defer_one
from yubin.console.app import create_app
from yubin.console.settings import ConsoleSettings

PASSWORD = "integration-console-password"
ACTION = {"X-Yubin-Console": "1"}
START = datetime.now(UTC) - timedelta(seconds=30)
MID = "<m1@alpha.test>"


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def add(site: AuthService, *events: TraceEvent) -> None:
    async def go() -> None:
        redis = connect(site.redis_url)
        try:
            for e in events:
                await publish(redis, TRACE, e, maxlen=TRACE_MAXLEN)
        finally:
            await redis.aclose()

    asyncio.run(go())


def ev(service: str, name: str, queue_id: str, seconds: float, message_id: str = MID, **detail) -> TraceEvent:
    return TraceEvent(
        queue_id=queue_id, message_id=message_id, service=service, event=name, at=at(seconds), detail=detail
    )


@pytest.fixture
def sites(redis_factory, service_factory: Callable) -> Iterator[tuple[AuthService, AuthService]]:
    alpha = start_auth_service(service_factory, redis_factory().url)
    beta = start_auth_service(service_factory, redis_factory().url)
    add(
        alpha,
        ev(
            "submission",
            "accepted",
            "A1",
            0.0,
            sender="alice@alpha.test",
            recipients=["bob@beta.test"],
            streams=[OUTBOUND],
        ),
        ev("relay", "mx-lookup", "A1", 0.2, domain="beta.test", answer=[{"host": "mx.beta.test"}]),
        ev("relay", "attempt", "A1", 0.3, domain="beta.test", reply="250 2.0.0 queued as B1"),
        ev("relay", "delivered", "A1", 0.35, recipients={"bob@beta.test": "2.0.0"}),
    )
    add(
        beta,
        ev(
            "mx",
            "accepted",
            "B1",
            0.31,
            sender="alice@alpha.test",
            recipients=["bob@beta.test"],
            streams=[LOCAL_DELIVERY],
        ),
        ev("delivery", "stored", "B1", 0.4, recipient="bob@beta.test", file="1.M1.beta"),
        ev("pop3", "retrieved", "B1", 5.0, user="bob@beta.test", command="RETR"),
    )
    yield alpha, beta
    alpha.admin.close()
    beta.admin.close()


def console_for(*sites: AuthService, down: bool = False) -> TestClient:
    entries = {
        domain: {"admin": site.url, "admin_token": site.admin_token, "users": {}}
        for domain, site in zip(("alpha.test", "beta.test"), sites, strict=True)
    }
    if down:
        entries["down.test"] = {"admin": f"http://127.0.0.1:{free_port()}", "admin_token": "x" * 32}
    client = TestClient(create_app(ConsoleSettings(sites=entries, upstream_timeout_s=2), PASSWORD))
    return client


def logged_in(client: TestClient) -> TestClient:
    assert client.post("/api/login", json={"secret": PASSWORD}, headers=ACTION).status_code == 200
    return client


def test_the_journey_is_merged_across_both_sites_in_time_order(sites) -> None:
    with console_for(*sites) as raw:
        client = logged_in(raw)
        for wanted in (MID, "m1@alpha.test", "B1"):  # by Message-ID, without <>, by the other site's queue id
            answer = client.get("/api/message", params={"id": wanted})
            assert answer.status_code == 200, answer.text
            steps = [(e["site"], e["service"], e["event"]) for e in answer.json()["events"]]
            assert steps == [
                ("alpha.test", "submission", "accepted"),
                ("alpha.test", "relay", "mx-lookup"),
                ("alpha.test", "relay", "attempt"),
                ("beta.test", "mx", "accepted"),
                ("alpha.test", "relay", "delivered"),
                ("beta.test", "delivery", "stored"),
                ("beta.test", "pop3", "retrieved"),
            ], wanted
        deltas = [e["since_previous_ms"] for e in answer.json()["events"]]
        assert deltas[0] is None and deltas[-1] == 4600
        assert client.get("/api/message", params={"id": "<nothing@alpha.test>"}).status_code == 404


def test_search_by_address_finds_one_message_at_both_sites(sites) -> None:
    with console_for(*sites) as raw:
        rows = logged_in(raw).get("/api/messages", params={"q": "bob@beta.test"}).json()["messages"]
        assert len(rows) == 1
        assert rows[0]["message_id"] == MID
        assert sorted(rows[0]["sites"]) == ["alpha.test", "beta.test"]
        assert sorted(rows[0]["queue_ids"]) == ["A1", "B1"]


def test_the_live_feed_has_the_history_then_new_events(sites) -> None:
    alpha, _beta = sites
    with console_for(*sites) as raw:
        client = logged_in(raw)

        def recent() -> list[tuple[str, str, str]]:
            return [
                (e["site"], e["queue_id"], e["event"]) for e in client.get("/api/overview").json()["recent"]
            ]

        deadline = time.monotonic() + 20
        while ("beta.test", "B1", "retrieved") not in recent() or (
            "alpha.test",
            "A1",
            "delivered",
        ) not in recent():
            assert time.monotonic() < deadline, recent()
            time.sleep(0.2)
        add(alpha, ev("submission", "accepted", "A2", 6.0, message_id="<m2@alpha.test>", streams=[OUTBOUND]))
        while ("alpha.test", "A2", "accepted") not in recent():
            assert time.monotonic() < deadline, recent()
            time.sleep(0.2)
        overview = client.get("/api/overview").json()
        assert overview["status"] == {"alpha.test": "live", "beta.test": "live"}
        # The queues and rates come from the services' /metrics (none configured here), not from the trace.
        assert overview["stats"]["alpha.test/relay"] == {"rate": None, "count": None, "depth": None}
        assert overview["stats"]["beta.test/mailbox"]["depth"] == 0  # B1 was stored, then retrieved


def test_a_site_that_is_down_is_named_and_the_others_still_answer(sites) -> None:
    with console_for(*sites, down=True) as raw:
        answer = logged_in(raw).get("/api/messages", params={"q": "bob@beta.test"}).json()
        assert len(answer["messages"]) == 1
        assert list(answer["errors"]) == ["down.test"]


def test_queues_show_the_deferred_and_the_actions_reach_the_site(sites) -> None:
    alpha, _beta = sites
    envelope = defer_one(alpha.redis_url, local_too=False)
    with console_for(*sites) as raw:
        client = logged_in(raw)
        answer = client.get("/api/queues").json()
        assert answer["errors"] == {}
        alpha_queues = next(s for s in answer["sites"] if s["site"] == "alpha.test")
        [waiting] = alpha_queues["deferred"]["deferred"]
        assert waiting["queue_id"] == envelope.queue_id
        assert "no answer from mx.gamma.test" in waiting["last_error"]
        path = f"/api/queues/alpha.test/deferred/{envelope.queue_id}"
        assert client.post(f"{path}/retry").status_code == 403  # no console header: refused here
        assert client.post(f"{path}/retry", headers=ACTION).status_code == 200
        after = client.get("/api/queues").json()
        assert next(s for s in after["sites"] if s["site"] == "alpha.test")["deferred"]["deferred"] == []
        assert client.delete(path, headers=ACTION).status_code == 404  # the site's answer, passed on
