"""The internal API in-process: logins, recipients, domains; hash checks counted, not timed."""

import asyncio
import time

import httpx
import pytest

from services.auth.app import create_app
from tests.unit.auth.conftest import ADMIN_TOKEN, SERVICE_TOKEN

ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SERVICE_HEADERS = {"Authorization": f"Bearer {SERVICE_TOKEN}"}

FAILED = {"ok": False, "address": None, "throttled": False, "retry_after_s": None}


@pytest.fixture
async def bob(admin):
    assert (await admin.post("/v1/domains", json={"name": "alpha.test"})).is_success
    body = {"address": "bob@alpha.test", "password": "bobs-password", "quota_bytes": 1000}
    assert (await admin.post("/v1/users", json=body)).is_success
    return "bob@alpha.test"


def login(username: str, password: str, client_ip: str | None = "192.0.2.1") -> dict:
    return {"username": username, "password": password, "service": "submission", "client_ip": client_ip}


@pytest.fixture
def verifications(app):
    passwords = app.state.parts.passwords
    return lambda: passwords.verifications


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


async def test_a_username_is_locked_after_five_failures_whether_or_not_it_exists(
    internal, bob, verifications
):
    for username in ("bob@alpha.test", "nobody@alpha.test"):
        answers = []
        for i in range(6):
            attempt = login(username, "wrong-password", client_ip=f"192.0.2.{i}")  # a different IP each time
            answers.append((await internal.post("/internal/v1/verify", json=attempt)).json())
        assert answers[:5] == [FAILED] * 5
        assert answers[5]["throttled"] and not answers[5]["ok"]
        assert 890 <= answers[5]["retry_after_s"] <= 900

    # Locked: even the right password is refused, and not even checked.
    before = verifications()
    answer = await internal.post(
        "/internal/v1/verify", json=login("bob@alpha.test", "bobs-password", "192.0.2.99")
    )
    assert answer.json()["throttled"] and not answer.json()["ok"]
    assert verifications() == before


async def test_a_client_ip_is_locked_after_five_failures_on_any_usernames(internal, bob, verifications):
    for i in range(5):
        answer = await internal.post(
            "/internal/v1/verify", json=login(f"user{i}@alpha.test", "x", "192.0.2.7")
        )
        assert answer.json() == FAILED
    before = verifications()
    locked = await internal.post(
        "/internal/v1/verify", json=login("bob@alpha.test", "bobs-password", "192.0.2.7")
    )
    assert locked.json()["throttled"]
    assert verifications() == before
    # Bob from elsewhere is fine: the lock is the IP's, not his.
    elsewhere = await internal.post(
        "/internal/v1/verify", json=login("bob@alpha.test", "bobs-password", "192.0.2.8")
    )
    assert elsewhere.json()["ok"]


async def test_a_success_forgives_the_username_but_not_the_ip(internal, bob):
    for _ in range(4):
        await internal.post("/internal/v1/verify", json=login("bob@alpha.test", "wrong", "192.0.2.50"))
    assert (
        await internal.post("/internal/v1/verify", json=login("bob@alpha.test", "bobs-password", None))
    ).json()["ok"]
    # The username's count starts over ...
    for i in range(4):
        answer = await internal.post(
            "/internal/v1/verify", json=login("bob@alpha.test", "wrong", f"192.0.2.{60 + i}")
        )
        assert answer.json() == FAILED
    # ... but the IP's does not: an attacker's own good login cannot reset it between guesses.
    await internal.post("/internal/v1/verify", json=login("bob@alpha.test", "bobs-password", "192.0.2.50"))
    answer = await internal.post("/internal/v1/verify", json=login("eve@alpha.test", "wrong", "192.0.2.50"))
    assert answer.json() == FAILED
    assert (
        await internal.post("/internal/v1/verify", json=login("eve@alpha.test", "x", "192.0.2.50"))
    ).json()["throttled"]


async def test_parallel_guesses_cannot_outrun_the_limit(internal, bob, verifications):
    before = verifications()
    attempts = [login("bob@alpha.test", f"guess-{i}", None) for i in range(20)]
    answers = await asyncio.gather(*(internal.post("/internal/v1/verify", json=a) for a in attempts))
    assert all(a.status_code == 200 and not a.json()["ok"] for a in answers)
    assert verifications() - before == 5
    assert sum(a.json()["throttled"] for a in answers) == 15


async def test_parallel_good_logins_of_one_user_all_succeed(internal, bob, verifications):
    """Attempts in progress count against the username's failures left, but they make later attempts
    wait, never fail: eight clients of one user logging in at once all get in, one hash check each."""
    before = verifications()
    answers = await asyncio.gather(
        *(
            internal.post("/internal/v1/verify", json=login("bob@alpha.test", "bobs-password", None))
            for _ in range(8)
        )
    )
    assert [a.json()["address"] for a in answers] == ["bob@alpha.test"] * 8
    assert verifications() - before == 8


async def test_parallel_good_logins_after_recent_failures_all_succeed(internal, bob):
    for i in range(4):  # one failure left before the lock: one check at a time until a success forgives
        assert (
            await internal.post("/internal/v1/verify", json=login("bob@alpha.test", "typo", f"192.0.2.{i}"))
        ).json() == FAILED
    answers = await asyncio.gather(
        *(
            internal.post("/internal/v1/verify", json=login("bob@alpha.test", "bobs-password", None))
            for _ in range(8)
        )
    )
    assert all(a.json()["ok"] for a in answers)


def in_progress_key(username: str) -> str:
    return f"yubin:auth:throttle:user:{username}:checking"


async def test_a_login_waits_for_the_attempts_in_progress_then_goes_ahead(make_settings, redis_url):
    app = create_app(make_settings(auth_user_max_failures=1, auth_login_wait_s=30))
    redis = app.state.parts.redis
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://auth", headers=ADMIN_HEADERS
    ) as admin:
        await admin.post("/v1/domains", json={"name": "alpha.test"})
        await admin.post("/v1/users", json={"address": "bob@alpha.test", "password": "bobs-password"})
    # Another replica is checking a password for bob: with one failure left, nobody else may start.
    await redis.zadd(in_progress_key("bob@alpha.test"), {"other-replica": int(time.time() * 1000)})
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://auth", headers=SERVICE_HEADERS
    ) as internal:
        waiting = asyncio.create_task(
            internal.post("/internal/v1/verify", json=login("bob@alpha.test", "bobs-password"))
        )
        await asyncio.sleep(0.3)
        assert not waiting.done() and app.state.parts.passwords.verifications == 0
        await redis.zrem(in_progress_key("bob@alpha.test"), "other-replica")  # that check ended
        assert (await waiting).json()["ok"]
    await redis.aclose()


async def test_a_login_that_waits_too_long_is_a_temporary_failure(make_settings):
    app = create_app(make_settings(auth_user_max_failures=1, auth_login_wait_s=0))
    redis = app.state.parts.redis
    await redis.zadd(in_progress_key("bob@alpha.test"), {"other-replica": int(time.time() * 1000)})
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://auth", headers=SERVICE_HEADERS
    ) as internal:
        answer = await internal.post("/internal/v1/verify", json=login("bob@alpha.test", "bobs-password"))
    assert answer.status_code == 503  # the mail services answer [SYS/TEMP] / 454: not "wrong password"
    assert app.state.parts.passwords.verifications == 0
    # Not a failure: once the other check is over, the username has its whole allowance.
    await redis.zrem(in_progress_key("bob@alpha.test"), "other-replica")
    assert await redis.get("yubin:auth:throttle:user:bob@alpha.test:failures") is None
    await redis.aclose()


async def test_a_burst_from_one_ip_overshoots_its_limit_by_at_most_the_burst(make_settings):
    app = create_app(make_settings(auth_ip_burst=3))
    passwords = app.state.parts.passwords
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://auth",
        headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
    ) as internal:
        attempts = [login(f"user{i}@alpha.test", "guess", "192.0.2.66") for i in range(20)]
        answers = await asyncio.gather(*(internal.post("/internal/v1/verify", json=a) for a in attempts))
        assert all(not a.json()["ok"] for a in answers)
        assert 5 <= passwords.verifications <= 5 + 3
        answer = await internal.post(
            "/internal/v1/verify", json=login("user0@alpha.test", "guess", "192.0.2.66")
        )
        assert answer.json()["throttled"]
    await app.state.parts.redis.aclose()


async def test_many_users_behind_one_ip_may_log_in_at_once(internal, admin):
    await admin.post("/v1/domains", json={"name": "alpha.test"})
    users = [f"user{i}@alpha.test" for i in range(12)]
    for address in users:
        await admin.post("/v1/users", json={"address": address, "password": "password-of-" + address})
    attempts = [login(address, "password-of-" + address, "192.0.2.77") for address in users]
    answers = await asyncio.gather(*(internal.post("/internal/v1/verify", json=a) for a in attempts))
    assert [a.json()["address"] for a in answers] == users


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
