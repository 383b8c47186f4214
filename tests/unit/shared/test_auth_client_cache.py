"""The auth client's cache of recipient and domain lookups: TTL, LRU bound, single-flight, never logins.

The end-to-end tests run against the real auth service process: after the first lookup the process is
stopped, and the cached answer is what the client still gives.
"""

import asyncio

import pytest

from shared.auth_client import AuthClient, AuthUnavailable, LookupCache
from shared.config import AuthClientSettings


def client_for(auth_service, **settings) -> AuthClient:
    return AuthClient(
        AuthClientSettings(
            auth_url=auth_service.url,
            service_token=auth_service.service_token,
            auth_timeout_s=2,
            **settings,
        )
    )


async def test_within_the_ttl_answers_come_from_the_cache_without_the_auth_service(auth_service):
    auth_service.add_domain("alpha.test")
    auth_service.add_user("bob@alpha.test", "bobs-password", quota_bytes=1000)
    async with client_for(auth_service, auth_cache_ttl_s=600) as client:
        assert (await client.recipient("bob@alpha.test")).deliverable
        assert not (await client.recipient("nobody@alpha.test")).exists
        assert await client.domains() == ["alpha.test"]
        auth_service.process.stop()
        found = await client.recipient("bob@alpha.test")
        assert found.deliverable and found.quota_bytes == 1000
        assert not (await client.recipient("nobody@alpha.test")).exists  # negative answers too
        assert await client.domains() == ["alpha.test"]
        with pytest.raises(AuthUnavailable):  # never asked before: not in the cache
            await client.recipient("carol@alpha.test")


async def test_logins_are_never_cached(auth_service):
    auth_service.add_domain("alpha.test")
    auth_service.add_user("bob@alpha.test", "bobs-password")
    async with client_for(auth_service, auth_cache_ttl_s=600) as client:
        assert (await client.verify("bob@alpha.test", "bobs-password", "smtp", "127.0.0.1")).ok
        auth_service.process.stop()
        with pytest.raises(AuthUnavailable):
            await client.verify("bob@alpha.test", "bobs-password", "smtp", "127.0.0.1")


async def test_after_the_ttl_a_change_is_seen(auth_service):
    auth_service.add_domain("alpha.test")
    auth_service.add_user("bob@alpha.test", "bobs-password")
    async with client_for(auth_service, auth_cache_ttl_s=0.2) as client:
        assert (await client.recipient("bob@alpha.test")).exists
        auth_service.delete_user("bob@alpha.test")
        auth_service.add_domain("beta.test")
        for _ in range(200):  # the TTL is 0.2 s; give a busy machine ample time
            if not (await client.recipient("bob@alpha.test")).exists:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the deleted user was still reported after the TTL")
        assert sorted(await client.domains()) == ["alpha.test", "beta.test"]


async def test_with_ttl_zero_every_lookup_asks(auth_service):
    auth_service.add_domain("alpha.test")
    auth_service.add_user("bob@alpha.test", "bobs-password")
    async with client_for(auth_service, auth_cache_ttl_s=0) as client:
        assert (await client.recipient("bob@alpha.test")).exists
        auth_service.delete_user("bob@alpha.test")
        assert not (await client.recipient("bob@alpha.test")).exists


async def test_the_cache_is_bounded_and_evicts_the_least_recently_used(auth_service):
    auth_service.add_domain("alpha.test")
    async with client_for(auth_service, auth_cache_ttl_s=600, auth_cache_max_entries=2) as client:
        await client.recipient("a@alpha.test")
        await client.recipient("b@alpha.test")
        await client.recipient("a@alpha.test")  # a is now more recently used than b
        await client.recipient("c@alpha.test")  # evicts b
        auth_service.process.stop()
        assert not (await client.recipient("a@alpha.test")).exists
        assert not (await client.recipient("c@alpha.test")).exists
        with pytest.raises(AuthUnavailable):
            await client.recipient("b@alpha.test")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_lookup_cache_expires_entries_after_the_ttl():
    clock = Clock()
    cache: LookupCache[int] = LookupCache(5.0, 10, clock=clock)
    calls = 0

    async def fetch() -> int:
        nonlocal calls
        calls += 1
        return calls

    assert await cache.get("k", fetch) == 1
    clock.now += 4.9
    assert await cache.get("k", fetch) == 1
    clock.now += 0.2
    assert await cache.get("k", fetch) == 2
    assert len(cache) == 1


async def test_concurrent_lookups_of_one_key_share_one_fetch():
    cache: LookupCache[str] = LookupCache(5.0, 10)
    release = asyncio.Event()
    calls = 0

    async def fetch() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        return "answer"

    waiters = [asyncio.create_task(cache.get("k", fetch)) for _ in range(50)]
    other = asyncio.create_task(cache.get("other", fetch))
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*waiters) == ["answer"] * 50
    assert await other == "answer"
    assert calls == 2  # one per key


async def test_a_failure_reaches_every_waiter_and_is_not_cached():
    cache: LookupCache[str] = LookupCache(5.0, 10)
    release = asyncio.Event()
    outcomes = iter([AuthUnavailable("down"), "answer"])

    async def fetch() -> str:
        await release.wait()
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    waiters = [asyncio.create_task(cache.get("k", fetch)) for _ in range(3)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, AuthUnavailable) for r in results)
    assert await cache.get("k", fetch) == "answer"


async def test_a_cancelled_waiter_does_not_cancel_the_lookup_of_the_others():
    cache: LookupCache[str] = LookupCache(5.0, 10)
    release = asyncio.Event()

    async def fetch() -> str:
        await release.wait()
        return "answer"

    first = asyncio.create_task(cache.get("k", fetch))
    second = asyncio.create_task(cache.get("k", fetch))
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    assert await second == "answer"
    assert first.cancelled()


def test_lookup_cache_keeps_at_most_max_entries():
    cache: LookupCache[int] = LookupCache(5.0, 3)
    for n in range(10):
        cache.store(str(n), n)
    assert len(cache) == 3
    assert cache.cached("9") == (True, 9)
    assert cache.cached("0") == (False, None)
