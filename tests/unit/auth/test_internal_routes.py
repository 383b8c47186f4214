"""The internal API in-process: logins, recipients, domains; hash checks counted, not timed."""

import pytest

from tests.unit.auth.conftest import FAILED, login


async def test_the_right_password_logs_in_with_the_canonical_address(internal, bob):
    answer = await internal.post("/internal/v1/verify", json=login("BOB@Alpha.Test", "bobs-password"))
    assert answer.status_code == 200
    assert answer.json() == {
        "ok": True,
        "address": "bob@alpha.test",
        "throttled": False,
        "retry_after_s": None,
    }


async def test_every_failure_looks_the_same_and_costs_one_hash_check(internal, admin, bob, verifications):
    await admin.post("/v1/users", json={"address": "off@alpha.test", "password": "offs-password"})
    await admin.patch("/v1/users/off@alpha.test", json={"enabled": False})
    attempts = [
        login("bob@alpha.test", "wrong-password", "192.0.2.1"),  # wrong password
        login("nobody@alpha.test", "wrong-password", "192.0.2.2"),  # unknown user
        login("bob@beta.test", "bobs-password", "192.0.2.3"),  # unknown domain
        login("not an address", "bobs-password", "192.0.2.4"),  # not even an address
        login("off@alpha.test", "offs-password", "192.0.2.5"),  # disabled, right password
    ]
    for attempt in attempts:
        before = verifications()
        answer = await internal.post("/internal/v1/verify", json=attempt)
        assert (answer.status_code, answer.json()) == (200, FAILED), attempt
        assert verifications() == before + 1, attempt


async def test_recipients(internal, admin, bob):
    async def recipient(address: str) -> dict:
        answer = await internal.get(f"/internal/v1/recipients/{address}")
        assert answer.status_code == 200
        return answer.json()

    assert await recipient("Bob@ALPHA.test") == {
        "address": "bob@alpha.test",
        "exists": True,
        "enabled": True,
        "quota_bytes": 1000,
        "destinations": None,
    }
    assert (await recipient("nobody@alpha.test"))["exists"] is False
    assert (await recipient("bob@beta.test"))["exists"] is False
    assert (await recipient("bo..b@alpha.test"))["exists"] is False
    assert (await recipient("a%2F..%2Fb@alpha.test"))["exists"] is False
    await admin.patch("/v1/users/bob@alpha.test", json={"enabled": False})
    assert (await recipient("bob@alpha.test"))["enabled"] is False


async def test_domains(internal, admin):
    assert (await internal.get("/internal/v1/domains")).json() == {"domains": []}
    for name in ("beta.test", "alpha.test"):
        await admin.post("/v1/domains", json={"name": name})
    assert (await internal.get("/internal/v1/domains")).json() == {"domains": ["alpha.test", "beta.test"]}


async def test_oversized_logins_are_refused(internal):
    answer = await internal.post("/internal/v1/verify", json=login("bob@alpha.test", "x" * 1025))
    assert answer.status_code == 422
    assert "xxxx" not in answer.text
    huge = await internal.post("/internal/v1/verify", content=b'{"username": "' + b"x" * 20_000 + b'"}')
    assert huge.status_code == 413


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/internal/v1/verify"),
        ("GET", "/internal/v1/recipients/bob@alpha.test"),
        ("GET", "/internal/v1/domains"),
    ],
)
async def test_every_internal_route_wants_the_service_token(internal, admin, method, path):
    body = {"json": login("bob@alpha.test", "x")} if method == "POST" else {}
    assert (await internal.request(method, path, headers={"Authorization": ""}, **body)).status_code == 401
    assert (await admin.request(method, path, **body)).status_code == 401
