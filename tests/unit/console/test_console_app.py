"""The console's server: login and sessions, the action header, its security headers, and that what it
serves from mail is data (JSON, one SSE line per event), never markup."""

import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from yubin.console.app import create_app, sse
from yubin.console.sessions import COOKIE
from yubin.console.settings import ConsoleSettings

STATIC = Path(__file__).resolve().parents[3] / "yubin" / "console" / "static"
PASSWORD = "console-test-password"
TOKEN = "a" * 64
ACTION = {"X-Yubin-Console": "1"}
EVIL = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned=2">'


@pytest.fixture
def client() -> Iterator[TestClient]:
    # A site whose admin API is nowhere: the console must still serve, and say the site is unreachable.
    settings = ConsoleSettings(
        sites={"alpha.test": {"admin": "http://127.0.0.1:9", "admin_token": TOKEN, "users": {}}},
        upstream_timeout_s=0.5,
    )
    with TestClient(create_app(settings, PASSWORD), base_url="http://127.0.0.1:8025") as test_client:
        yield test_client


def login(client: TestClient, secret: str = PASSWORD):
    return client.post("/api/login", json={"secret": secret}, headers=ACTION)


def test_api_needs_a_login(client: TestClient) -> None:
    assert client.get("/api/overview").status_code == 401
    assert client.get("/api/messages", params={"q": "x"}).status_code == 401
    assert client.get("/api/session").json() == {"logged_in": False}


@pytest.mark.parametrize("secret", [PASSWORD, TOKEN])
def test_the_console_password_or_a_site_admin_token_logs_in(client: TestClient, secret: str) -> None:
    answer = login(client, secret)
    assert answer.status_code == 200
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert secret not in cookie
    assert client.get("/api/overview").status_code == 200


def test_a_wrong_secret_is_refused_without_a_session(client: TestClient) -> None:
    answer = login(client, PASSWORD + "x")
    assert answer.status_code == 401
    assert "set-cookie" not in answer.headers
    assert client.get("/api/overview").status_code == 401


def test_logout_ends_the_session(client: TestClient) -> None:
    login(client)
    assert client.post("/api/logout", headers=ACTION).status_code == 200
    client.cookies.clear()
    assert client.get("/api/overview").status_code == 401


def test_actions_need_the_console_header_and_its_own_origin(client: TestClient) -> None:
    # A form on another site can post, but cannot add a header: login and actions refuse it.
    assert client.post("/api/login", json={"secret": PASSWORD}).status_code == 403
    login(client)
    form = {"sender": "alice@alpha.test", "to": "bob@beta.test"}
    assert client.post("/api/send", json=form).status_code == 403
    assert client.delete("/api/queues/alpha.test/dead/1-0").status_code == 403
    foreign = {**ACTION, "Origin": "http://evil.example"}
    assert client.post("/api/send", json=form, headers=foreign).status_code == 403
    own = {**ACTION, "Origin": "http://127.0.0.1:8025"}
    # Past the checks: refused for what it is (not a lab user), not for where it came from.
    assert client.post("/api/send", json=form, headers=own).status_code == 422


def test_ids_passed_to_a_site_are_plain_ids(client: TestClient) -> None:
    login(client)
    assert client.delete(
        "/api/queues/alpha.test/deferred/..%2F..%2Fv1%2Fusers", headers=ACTION
    ).status_code in (404, 422)
    assert client.post("/api/queues/nowhere.test/deferred/Q1/retry", headers=ACTION).status_code == 404


def test_security_headers_and_a_strict_csp(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    api = client.get("/api/overview")
    assert api.headers["content-type"].startswith("application/json")
    assert api.headers["cache-control"] == "no-store"
    assert "content-security-policy" in api.headers


def test_what_came_from_mail_is_served_as_json_data(client: TestClient) -> None:
    login(client)
    console = client.app.state.console
    console.feed.publish(
        {
            "site": "alpha.test",
            "service": "submission",
            "event": "accepted",
            "queue_id": "Q1",
            "message_id": "<x@alpha.test>",
            "at": "2026-01-01T00:00:00+00:00",
            "detail": {"subject": EVIL},
        }
    )
    answer = client.get("/api/overview")
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["recent"][-1]["detail"]["subject"] == EVIL
    # An error that repeats the query repeats it inside JSON, never as a page.
    client.cookies.clear()
    refused = client.get("/api/message", params={"id": EVIL})
    assert refused.headers["content-type"] == "application/json"


def test_one_event_is_one_sse_data_line_whatever_the_mail_held() -> None:
    frame = sse("trace", {"detail": {"subject": "a\r\n\r\nevent: stats\ndata: {}\n\n" + EVIL}})
    lines = frame.split("\n")
    assert lines[0] == "event: trace"
    assert lines[1].startswith("data: ")
    assert lines[2:] == ["", ""]
    assert json.loads(lines[1][6:])["detail"]["subject"].endswith(EVIL)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.problems.append("inline script")
        if "style" in names or any(name.startswith("on") for name in names):
            self.problems.append(f"inline style or handler on <{tag}>")

    def handle_data(self, data: str) -> None:
        pass


def test_the_page_has_no_inline_script_or_style() -> None:
    parser = _Tags()
    parser.feed((STATIC / "index.html").read_text())
    assert parser.problems == []


def test_the_scripts_never_turn_text_into_markup() -> None:
    sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function")
    for script in STATIC.glob("*.js"):
        found = sinks.findall(script.read_text())
        assert not found, f"{script.name}: {found}"
