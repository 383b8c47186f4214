"""The fault API (`/v1/faults`, services/auth/routes/faults.py) of the real auth service on a real Redis:
strict validation, expiry in Redis, removal, the trace stream, and `yubin lab fault`."""

import json
import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from shared.faults import INDEX, KEY_PREFIX
from shared.streams import TRACE
from tests.fixtures.auth import AuthService, start_auth_service
from tests.fixtures.processes import ServiceProcess
from tests.fixtures.redis_server import RedisServer
from yubin.cli.main import main


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthService]:
    """One auth service and Redis for the module (starting one per test is the slow part)."""
    directory = tmp_path_factory.mktemp("faults-api")
    server = RedisServer(directory / "redis").start()
    started: list[ServiceProcess] = []

    def factory(
        module: str, env: dict[str, str], *, wait_port=None, name: str | None = None
    ) -> ServiceProcess:
        process = ServiceProcess(module, env, directory / f"{name or module}.log")
        started.append(process)
        return process.start(wait_port, timeout=60)

    try:
        service = start_auth_service(factory, server.url)
        yield service
        service.admin.close()
    finally:
        for process in started:
            process.stop()
        server.stop()


@pytest.fixture
def auth_service(api: AuthService) -> AuthService:
    """The module's service with no faults and an empty trace stream."""
    client = redis.Redis.from_url(api.redis_url)
    client.delete(INDEX, TRACE, *client.scan_iter(match=KEY_PREFIX + "*"))
    client.close()
    return api


def trace_events(redis_url: str) -> list[dict]:
    client = redis.Redis.from_url(redis_url)
    try:
        return [json.loads(fields[b"data"]) for _, fields in client.xrange(TRACE)]
    finally:
        client.close()


def test_add_list_and_remove(auth_service: AuthService) -> None:
    admin = auth_service.admin
    added = admin.post(
        "/v1/faults",
        json={"kind": "smtp-reply", "reply": "451 4.3.0 lab fault", "share": 0.5, "expires_in_s": 600},
    )
    assert added.status_code == 201, added.text
    fault = added.json()
    assert fault["kind"] == "smtp-reply" and fault["share"] == 0.5 and fault["stage"] == "data"
    assert fault["reply"] == "451 4.3.0 lab fault"
    assert {"id", "created_at", "expires_at"} <= set(fault)
    assert admin.get("/v1/faults").json() == {"faults": [fault]}

    client = redis.Redis.from_url(auth_service.redis_url)
    ttl = client.pttl(KEY_PREFIX + fault["id"])
    assert 0 < ttl <= 600_000
    client.close()

    assert admin.delete(f"/v1/faults/{fault['id']}").status_code == 204
    assert admin.get("/v1/faults").json() == {"faults": []}
    assert admin.delete(f"/v1/faults/{fault['id']}").status_code == 404
    events = [e for e in trace_events(auth_service.redis_url) if e["event"].startswith("fault-")]
    assert [(e["event"], e["detail"]["fault"]["id"]) for e in events] == [
        ("fault-added", fault["id"]),
        ("fault-removed", fault["id"]),
    ]


def test_a_fault_expires_by_itself(auth_service: AuthService) -> None:
    admin = auth_service.admin
    fault = admin.post("/v1/faults", json={"kind": "drop", "stage": "connect", "expires_in_s": 1}).json()
    assert [f["id"] for f in admin.get("/v1/faults").json()["faults"]] == [fault["id"]]
    deadline = time.monotonic() + 10
    while admin.get("/v1/faults").json()["faults"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert admin.get("/v1/faults").json() == {"faults": []}
    client = redis.Redis.from_url(auth_service.redis_url)
    assert client.smembers(INDEX) == set()  # the listing pruned the expired id
    client.close()
    assert admin.delete(f"/v1/faults/{fault['id']}").status_code == 404


def test_dns_fault_domain_is_normalized(auth_service: AuthService) -> None:
    fault = auth_service.admin.post(
        "/v1/faults", json={"kind": "dns-servfail", "domain": "Beta.Test.", "expires_in_s": 60}
    ).json()
    assert fault["domain"] == "beta.test" and fault["stage"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "drop"},  # no expiry
        {"kind": "drop", "expires_in_s": 0},
        {"kind": "drop", "expires_in_s": 86_401},
        {"kind": "drop", "expires_in_s": "60"},
        {"kind": "drop", "expires_in_s": 1.5},
        {"kind": "drop", "expires_in_s": 60, "share": 1.5},
        {"kind": "drop", "expires_in_s": 60, "share": "0.5"},
        {"kind": "drop", "expires_in_s": 60, "share": True},
        {"kind": "drop", "expires_in_s": 60, "stage": "quit"},
        {"kind": "drop", "expires_in_s": 60, "reply": "451 4.3.0 x"},
        {"kind": "drop", "expires_in_s": 60, "surprise": 1},
        {"kind": "reboot", "expires_in_s": 60},
        {"kind": "smtp-reply", "expires_in_s": 60},
        {"kind": "smtp-reply", "reply": "250 2.0.0 fine", "expires_in_s": 60},
        {"kind": "smtp-reply", "reply": "451 5.3.0 wrong class", "expires_in_s": 60},
        {"kind": "smtp-reply", "reply": "451", "expires_in_s": 60},
        {"kind": "smtp-reply", "reply": "451 4.3.0 a\r\n250 smuggled", "expires_in_s": 60},
        {"kind": "smtp-reply", "reply": "451 4.3.0 " + "x" * 300, "expires_in_s": 60},
        {"kind": "smtp-reply", "reply": "451 4.3.0 x", "delay_s": 1, "expires_in_s": 60},
        {"kind": "delay", "expires_in_s": 60},
        {"kind": "delay", "delay_s": 0, "expires_in_s": 60},
        {"kind": "delay", "delay_s": 601, "expires_in_s": 60},
        {"kind": "dns-servfail", "expires_in_s": 60},
        {"kind": "dns-servfail", "domain": "beta test", "expires_in_s": 60},
        {"kind": "dns-servfail", "domain": "beta.test", "stage": "data", "expires_in_s": 60},
    ],
)
def test_invalid_faults_are_refused(auth_service: AuthService, body: dict) -> None:
    response = auth_service.admin.post("/v1/faults", json=body)
    assert response.status_code == 422, response.text
    assert auth_service.admin.get("/v1/faults").json() == {"faults": []}


def test_the_admin_token_is_required(auth_service: AuthService) -> None:
    with httpx.Client(base_url=auth_service.url) as anonymous:
        assert anonymous.get("/v1/faults").status_code == 401
        assert anonymous.post("/v1/faults", json={"kind": "drop", "expires_in_s": 60}).status_code == 401
    assert auth_service.admin.get("/v1/faults").json() == {"faults": []}


def test_yubin_lab_fault_add_list_remove(
    auth_service: AuthService, capsys: pytest.CaptureFixture[str]
) -> None:
    api = ["--admin-url", auth_service.url, "--token", auth_service.admin_token]
    assert main(["lab", "fault", "add", "smtp-reply", "--reply", "451 4.3.0 lab fault", "--share", "0.25",
                 "--stage", "rcpt", "--expires", "5m", *api, "--json"]) == 0  # fmt: skip
    fault = json.loads(capsys.readouterr().out)
    assert (fault["stage"], fault["share"]) == ("rcpt", 0.25)
    assert main(["lab", "fault", "list", *api]) == 0
    listed = capsys.readouterr().out
    assert fault["id"] in listed and "451 4.3.0 lab fault" in listed
    with pytest.raises(SystemExit) as usage:
        main(["lab", "fault", "add", "delay", "--delay", "abc", *api])
    assert usage.value.code == 2
    assert main(["lab", "fault", "add", "smtp-reply", "--reply", "250 ok", "--expires", "60", *api]) == 5
    assert main(["lab", "fault", "remove", fault["id"], *api]) == 0
    assert main(["lab", "fault", "remove", fault["id"], *api]) == 5
    assert auth_service.admin.get("/v1/faults").json() == {"faults": []}
