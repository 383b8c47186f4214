"""The `auth_service` fixture other services' tests rely on: it starts, administers, and answers them."""

import httpx

from shared.auth_client import AuthClient
from shared.config import AuthClientSettings


async def test_fixture_serves_the_internal_api_to_auth_client(auth_service):
    auth_service.add_domain("alpha.test")
    auth_service.add_user("bob@alpha.test", "bobs-password", quota_bytes=1000)
    # No client-side cache: this is about what the service answers, right after each change.
    settings = AuthClientSettings(
        auth_url=auth_service.url, service_token=auth_service.service_token, auth_cache_ttl_s=0
    )
    async with AuthClient(settings) as client:
        assert (await client.verify("bob@alpha.test", "bobs-password", "pop3", "127.0.0.1")).ok
        assert (await client.recipient("bob@alpha.test")).quota_bytes == 1000
        assert await client.domains() == ["alpha.test"]
        auth_service.patch_user("bob@alpha.test", enabled=False)
        assert not (await client.recipient("bob@alpha.test")).deliverable
        auth_service.delete_user("bob@alpha.test")
        assert not (await client.recipient("bob@alpha.test")).exists


def test_fixture_env_names_what_other_services_need(auth_service):
    assert set(auth_service.env) == {"YUBIN_REDIS_URL", "YUBIN_AUTH_URL", "YUBIN_SERVICE_TOKEN"}
    assert httpx.get(f"{auth_service.env['YUBIN_AUTH_URL']}/healthz").status_code == 200


def test_fixture_helpers_raise_on_errors(auth_service):
    try:
        auth_service.add_user("bob@nowhere.test", "bobs-password")
    except httpx.HTTPStatusError as exc:
        assert exc.response.status_code == 404
        assert "nowhere.test" in str(exc)
    else:
        raise AssertionError("adding a user in an unknown domain did not raise")
