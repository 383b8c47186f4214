"""A site for delivery tests: real Redis, the real auth service with alpha.test, Maildirs under tmp_path."""

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from shared.redis_client import connect
from tests.fixtures.auth import AuthService, start_auth_service
from tests.fixtures.processes import ServiceProcess

PASSWORD = "correct-horse-battery"


@pytest.fixture
def site(redis_url: str, service_factory: Callable[..., ServiceProcess]) -> Iterator[AuthService]:
    """The auth service with alpha.test, ann and bob (no quota)."""
    # The cheapest Argon2 parameters: these tests add users, they do not test password hashing.
    auth = start_auth_service(
        service_factory,
        redis_url,
        YUBIN_AUTH_ARGON2_TIME_COST="1",
        YUBIN_AUTH_ARGON2_MEMORY_KIB="8",
        YUBIN_AUTH_ARGON2_PARALLELISM="1",
    )
    auth.add_domain("alpha.test")
    auth.add_user("ann@alpha.test", PASSWORD)
    auth.add_user("bob@alpha.test", PASSWORD)
    yield auth
    auth.admin.close()


@pytest.fixture
def mail_root(tmp_path: Path) -> Path:
    return tmp_path / "mail"


@pytest.fixture
async def redis(site: AuthService) -> AsyncIterator[Redis]:
    client = connect(site.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def delivery_env(site: AuthService, mail_root: Path) -> dict[str, str]:
    """Short waits everywhere, so retries and reclaims happen within a test."""
    return {
        **site.env,
        "YUBIN_MAIL_ROOT": str(mail_root),
        "YUBIN_HOSTNAME": "mx.alpha.test",
        "YUBIN_BUS_BLOCK_MS": "100",
        "YUBIN_BUS_CLAIM_IDLE_MS": "300",
        "YUBIN_DELIVERY_RETRY_DELAYS_S": "[0.2]",
        "YUBIN_DELIVERY_SCHEDULER_POLL_S": "0.1",
        "YUBIN_DELIVERY_LIFETIME_S": "60",
    }


@pytest.fixture
def start_delivery(
    service_factory: Callable[..., ServiceProcess], delivery_env: dict[str, str]
) -> Callable[..., ServiceProcess]:
    """Start `python -m services.delivery` (settings overridable as env vars) and wait until it consumes."""

    def start(**overrides: str) -> ServiceProcess:
        service = service_factory("services.delivery", {**delivery_env, **overrides}, name="delivery")
        service.wait_for_log('"delivery started"')
        return service

    return start
