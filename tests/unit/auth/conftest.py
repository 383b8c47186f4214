"""The auth app in-process (httpx ASGI transport) against the test's real, flushed Redis."""

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from services.auth.app import create_app
from shared.config.auth import AuthSettings

ADMIN_TOKEN = "admin-token-for-unit-tests"
SERVICE_TOKEN = "service-token-for-unit-tests"


@pytest.fixture
def make_settings(redis_url: str) -> Callable[..., AuthSettings]:
    def make(**overrides) -> AuthSettings:
        fields = {
            "redis_url": redis_url,
            "admin_token": ADMIN_TOKEN,
            "service_token": SERVICE_TOKEN,
            # Route logic does not depend on hash cost; cheap argon2 keeps these tests quick on a busy
            # machine. The real costs are tested in test_passwords and by the process tests.
            "auth_argon2_memory_kib": 1024,
            "auth_argon2_time_cost": 1,
            "auth_argon2_parallelism": 1,
        }
        return AuthSettings(**{**fields, **overrides})

    return make


@pytest.fixture
async def app(make_settings):
    app = create_app(make_settings())
    yield app
    await app.state.parts.redis.aclose()


@pytest.fixture
async def admin(app) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://auth", headers=headers
    ) as client:
        yield client


@pytest.fixture
async def internal(app) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://auth", headers=headers
    ) as client:
        yield client


FAILED = {"ok": False, "address": None, "throttled": False, "retry_after_s": None}


def login(username: str, password: str, client_ip: str | None = "192.0.2.1") -> dict:
    """A body for POST /internal/v1/verify."""
    return {"username": username, "password": password, "service": "submission", "client_ip": client_ip}


@pytest.fixture
async def bob(admin) -> str:
    assert (await admin.post("/v1/domains", json={"name": "alpha.test"})).is_success
    body = {"address": "bob@alpha.test", "password": "bobs-password", "quota_bytes": 1000}
    assert (await admin.post("/v1/users", json=body)).is_success
    return "bob@alpha.test"


@pytest.fixture
def verifications(app) -> Callable[[], int]:
    """How many password hashes the app has checked so far."""
    passwords = app.state.parts.passwords
    return lambda: passwords.verifications
