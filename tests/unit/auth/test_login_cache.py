"""The login cache (services/auth/login_cache.py) in-process on real Redis: a repeated good login skips
the password hash; a password change, a deletion or a disable take effect at the next login, on every
replica; a wrong password is always checked, never answered from the cache. Hash checks are counted
(`Passwords.verifications`), never timed."""

import httpx
import pytest

from services.auth.app import create_app
from tests.unit.auth.conftest import ADMIN_TOKEN, FAILED, SERVICE_TOKEN, login

OK = {"ok": True, "address": "bob@alpha.test", "throttled": False, "retry_after_s": None}


@pytest.fixture
async def replicas(make_settings):
    """Two auth apps on the same Redis, like two replicas of the service: (admin, internal) clients each."""
    apps, clients = [], []

    def client(app, token: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://auth",
            headers={"Authorization": f"Bearer {token}"},
        )

    async def make(count: int = 2, **overrides):
        for _ in range(count):
            app = create_app(make_settings(**overrides))
            apps.append(app)
            clients.append((app, client(app, ADMIN_TOKEN), client(app, SERVICE_TOKEN)))
        admin = clients[0][1]
        await admin.post("/v1/domains", json={"name": "alpha.test"})
        await admin.post("/v1/users", json={"address": "bob@alpha.test", "password": "bobs-password"})
        return clients

    yield make
    for app, admin, internal in clients:
        await admin.aclose()
        await internal.aclose()
        await app.state.parts.redis.aclose()


async def verify(internal: httpx.AsyncClient, password: str, username: str = "bob@alpha.test") -> dict:
    answer = await internal.post("/internal/v1/verify", json=login(username, password))
    assert answer.status_code == 200, answer.text
    return answer.json()


def hashes(app) -> int:
    return app.state.parts.passwords.verifications


async def test_a_repeated_good_login_is_answered_without_a_hash_check(replicas):
    [(app, _, internal)] = await replicas(1)
    assert await verify(internal, "bobs-password") == OK
    checked = hashes(app)
    for _ in range(3):
        assert await verify(internal, "bobs-password") == OK
    assert hashes(app) == checked
    assert app.state.parts.logins.cache.hits == 3
    # Spelled differently, the same canonical user: the cache is keyed by the canonical name.
    assert (await verify(internal, "bobs-password", "Bob@ALPHA.test"))["ok"] is True
    assert hashes(app) == checked


async def test_a_wrong_password_is_checked_and_refused_even_right_after_a_good_login(replicas):
    [(app, _, internal)] = await replicas(1)
    assert await verify(internal, "bobs-password") == OK
    checked = hashes(app)
    assert await verify(internal, "bobs-passwor") == FAILED
    assert await verify(internal, "bobs-password ") == FAILED
    assert hashes(app) == checked + 2
    # A failure is never remembered: the same wrong password is checked again.
    assert await verify(internal, "bobs-passwor") == FAILED
    assert hashes(app) == checked + 3


async def test_a_password_changed_on_another_replica_is_refused_at_once(replicas):
    (app_a, _, internal_a), (_, admin_b, internal_b) = await replicas(2)
    assert await verify(internal_a, "bobs-password") == OK
    assert await verify(internal_a, "bobs-password") == OK
    assert app_a.state.parts.logins.cache.hits == 1  # cached in replica A
    changed = await admin_b.patch("/v1/users/bob@alpha.test", json={"password": "a-new-password"})
    assert changed.is_success, changed.text
    assert await verify(internal_a, "bobs-password") == FAILED
    assert await verify(internal_a, "a-new-password") == OK
    assert await verify(internal_b, "a-new-password") == OK


async def test_a_deleted_or_disabled_user_is_refused_at_once(replicas):
    (_, admin, internal), (_, _, internal_b) = await replicas(2)
    assert await verify(internal, "bobs-password") == OK
    assert await verify(internal_b, "bobs-password") == OK
    disabled = await admin.patch("/v1/users/bob@alpha.test", json={"enabled": False})
    assert disabled.is_success, disabled.text
    assert await verify(internal, "bobs-password") == FAILED
    assert await verify(internal_b, "bobs-password") == FAILED
    assert (await admin.patch("/v1/users/bob@alpha.test", json={"enabled": True})).is_success
    assert await verify(internal_b, "bobs-password") == OK
    assert (await admin.delete("/v1/users/bob@alpha.test")).is_success
    assert await verify(internal_b, "bobs-password") == FAILED
    # Created again with the same password: a new record, a new hash, a new check.
    body = {"address": "bob@alpha.test", "password": "bobs-password"}
    assert (await admin.post("/v1/users", json=body)).is_success
    assert await verify(internal_b, "bobs-password") == OK


async def test_a_ttl_of_zero_checks_every_login(replicas):
    [(app, _, internal)] = await replicas(1, auth_login_cache_ttl_s=0)
    assert await verify(internal, "bobs-password") == OK
    checked = hashes(app)
    assert await verify(internal, "bobs-password") == OK
    assert hashes(app) == checked + 1


async def test_a_cached_login_still_goes_through_the_throttle(replicas):
    """A network held by the throttle is refused before the cache is looked at."""
    [(app, _, internal)] = await replicas(1, auth_delay_base_s=60, auth_delay_max_s=600)
    assert await verify(internal, "bobs-password") == OK
    for _ in range(app.state.parts.settings.auth_pair_free_failures + 1):
        await verify(internal, "wrong-password")
    throttled = await verify(internal, "bobs-password")
    assert throttled["ok"] is False and throttled["throttled"] is True
