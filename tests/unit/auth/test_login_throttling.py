"""Login throttling in-process on real Redis: per (user, network), per network, and the per-user cap on
unknown networks. Answers, hash checks and Redis counters are asserted, never elapsed time."""

import asyncio
import time

import httpx
import pytest

from services.auth.app import create_app
from services.auth.throttle import PREFIX, pair_name
from tests.unit.auth.conftest import ADMIN_TOKEN, FAILED, SERVICE_TOKEN, login


def counter(subject: str) -> str:
    return f"{PREFIX}{subject}:failures"


def checking(subject: str) -> str:
    return f"{PREFIX}{subject}:checking"


@pytest.fixture
async def service(make_settings):
    """Make an app with settings of the test's choosing; yields (app, admin client, internal client)."""
    opened: list = []

    async def make(**overrides):
        app = create_app(make_settings(**overrides))
        admin = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://auth",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        internal = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://auth",
            headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
        )
        opened.append((app, admin, internal))
        await admin.post("/v1/domains", json={"name": "alpha.test"})
        await admin.post("/v1/users", json={"address": "bob@alpha.test", "password": "bobs-password"})
        return app, admin, internal

    yield make
    for app, admin, internal in opened:
        await admin.aclose()
        await internal.aclose()
        await app.state.parts.redis.aclose()


async def verify(internal: httpx.AsyncClient, username: str, password: str, client_ip: str | None) -> dict:
    answer = await internal.post("/internal/v1/verify", json=login(username, password, client_ip))
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_a_guesser_is_delayed_more_each_time_while_the_user_logs_in_from_elsewhere(service):
    # A long first delay: nothing here may run out while the test runs, however slow the machine.
    app, _, internal = await service(auth_delay_base_s=60, auth_delay_max_s=600)
    passwords = app.state.parts.passwords
    for username in ("bob@alpha.test", "ghost@alpha.test"):  # a user who does not exist: the same
        answers = [await verify(internal, username, "guess", "192.0.2.66") for _ in range(3)]
        assert answers == [FAILED] * 3
        checked = passwords.verifications
        refused = [await verify(internal, username, "bobs-password", "192.0.2.66") for _ in range(5)]
        # Not even the right password is looked at while the delay lasts, and each refusal doubles it.
        assert passwords.verifications == checked
        assert [(a["ok"], a["throttled"]) for a in refused] == [(False, True)] * 5
        assert [a["retry_after_s"] for a in refused] == [120, 240, 480, 600, 600]
        redis = app.state.parts.redis
        assert int(await redis.get(counter(pair_name(username, "192.0.2.66")))) == 8

    # Bob himself, from another address, with the right password: in at once.
    assert (await verify(internal, "bob@alpha.test", "bobs-password", "192.0.2.77"))["ok"]


async def test_a_success_forgives_the_pair_but_not_the_network(service):
    app, admin, internal = await service(auth_delay_base_s=60)
    await admin.post("/v1/users", json={"address": "eve@alpha.test", "password": "eves-password"})
    for _ in range(2):  # a typo, twice
        assert await verify(internal, "bob@alpha.test", "typo", "192.0.2.50") == FAILED
    for i in range(7):
        assert await verify(internal, f"nobody{i}@alpha.test", "guess", "192.0.2.50") == FAILED
    assert (await verify(internal, "bob@alpha.test", "bobs-password", "192.0.2.50"))["ok"]
    redis = app.state.parts.redis
    assert await redis.get(counter(pair_name("bob@alpha.test", "192.0.2.50"))) is None
    # The network's count goes on: owning one account does not reset the guesses at others.
    assert int(await redis.get(counter("ip:192.0.2.50"))) == 9
    assert await verify(internal, "eve@alpha.test", "guess", "192.0.2.50") == FAILED
    assert (await verify(internal, "eve@alpha.test", "eves-password", "192.0.2.50"))["throttled"]


async def test_a_network_spraying_usernames_is_delayed_but_not_for_users_known_there(service):
    app, admin, internal = await service(auth_delay_base_s=60)
    await admin.post("/v1/users", json={"address": "carol@alpha.test", "password": "carols-password"})
    assert (await verify(internal, "bob@alpha.test", "bobs-password", "192.0.2.7"))["ok"]  # bob's office
    for i in range(10):
        assert await verify(internal, f"user{i}@alpha.test", "guess", "192.0.2.7") == FAILED
    checked = app.state.parts.passwords.verifications
    assert (await verify(internal, "carol@alpha.test", "carols-password", "192.0.2.7"))["throttled"]
    assert app.state.parts.passwords.verifications == checked
    # Bob has logged in from there before: the network's delay is not his.
    assert (await verify(internal, "bob@alpha.test", "bobs-password", "192.0.2.7"))["ok"]
    # Carol from elsewhere is fine too.
    assert (await verify(internal, "carol@alpha.test", "carols-password", "192.0.2.8"))["ok"]


async def test_a_distributed_guesser_is_capped_on_unknown_networks_only(service):
    """One guess each from many addresses: past the user's cap every address that has not logged in as
    the user is delayed, together; the user's own usual address is not. Alike for a user who does not
    exist."""
    app, _, internal = await service(auth_user_free_failures=3, auth_delay_base_s=60)
    assert (await verify(internal, "bob@alpha.test", "bobs-password", "198.51.100.1"))["ok"]  # home
    for username in ("bob@alpha.test", "ghost@alpha.test"):
        for i in range(3):
            assert await verify(internal, username, "guess", f"203.0.113.{i}") == FAILED
        checked = app.state.parts.passwords.verifications
        fresh = await verify(internal, username, "bobs-password", "203.0.113.200")
        assert fresh == {"ok": False, "address": None, "throttled": True, "retry_after_s": 120}
        ipv6 = await verify(internal, username, "bobs-password", "2001:db8:5::1")
        assert ipv6 == {"ok": False, "address": None, "throttled": True, "retry_after_s": 240}
        assert app.state.parts.passwords.verifications == checked
    assert (await verify(internal, "bob@alpha.test", "bobs-password", "198.51.100.1"))["ok"]
    # The home network's own guesses still count against its pair, so it is no back door.
    for _ in range(3):
        assert await verify(internal, "bob@alpha.test", "guess", "198.51.100.1") == FAILED
    assert (await verify(internal, "bob@alpha.test", "bobs-password", "198.51.100.1"))["throttled"]


async def test_parallel_guesses_are_counted_exactly_and_checked_only_while_free(service):
    app, _, internal = await service(auth_delay_base_s=60)
    passwords, redis = app.state.parts.passwords, app.state.parts.redis
    attempts = [login("bob@alpha.test", f"guess-{i}", "192.0.2.9") for i in range(20)]
    answers = await asyncio.gather(*(internal.post("/internal/v1/verify", json=a) for a in attempts))
    assert all(a.status_code == 200 and not a.json()["ok"] for a in answers)
    assert passwords.verifications == 3  # the pair's free failures, not one more
    assert sum(a.json()["throttled"] for a in answers) == 17
    assert int(await redis.get(counter(pair_name("bob@alpha.test", "192.0.2.9")))) == 20
    # Only the three checked guesses reach the user's and the network's counters.
    assert int(await redis.get(counter("user:bob@alpha.test"))) == 3
    assert int(await redis.get(counter("ip:192.0.2.9"))) == 3


async def test_parallel_good_logins_of_one_user_all_succeed(service):
    """Attempts in progress count against the failures left, but they make later attempts wait, never
    fail: eight clients of one user logging in at once all get in, one hash check each, also right
    after two typos from the same place. (Login cache off: the later ones would be answered from it.)"""
    app, _, internal = await service(auth_login_cache_ttl_s=0)
    for _ in range(2):
        assert await verify(internal, "bob@alpha.test", "typo", "192.0.2.10") == FAILED
    before = app.state.parts.passwords.verifications
    answers = await asyncio.gather(
        *(verify(internal, "bob@alpha.test", "bobs-password", "192.0.2.10") for _ in range(8))
    )
    assert [a["address"] for a in answers] == ["bob@alpha.test"] * 8
    assert app.state.parts.passwords.verifications - before == 8


async def test_a_login_waits_for_the_attempts_in_progress_then_goes_ahead(service):
    app, _, internal = await service(auth_pair_free_failures=1, auth_login_wait_s=30)
    redis = app.state.parts.redis
    pair = pair_name("bob@alpha.test", "192.0.2.1")
    # Another replica is checking a password for bob from there: with one failure left, nobody else may.
    await redis.zadd(checking(pair), {"other-replica": int(time.time() * 1000)})
    before = app.state.parts.passwords.verifications
    waiting = asyncio.create_task(verify(internal, "bob@alpha.test", "bobs-password", "192.0.2.1"))
    await asyncio.sleep(0.3)
    assert not waiting.done() and app.state.parts.passwords.verifications == before
    await redis.zrem(checking(pair), "other-replica")  # that check ended
    assert (await waiting)["ok"]


async def test_a_login_that_waits_too_long_is_a_temporary_failure(service):
    app, _, internal = await service(auth_pair_free_failures=1, auth_login_wait_s=0)
    redis = app.state.parts.redis
    pair = pair_name("bob@alpha.test", "192.0.2.1")
    await redis.zadd(checking(pair), {"other-replica": int(time.time() * 1000)})
    before = app.state.parts.passwords.verifications
    answer = await internal.post(
        "/internal/v1/verify", json=login("bob@alpha.test", "bobs-password", "192.0.2.1")
    )
    assert answer.status_code == 503  # the mail services answer [SYS/TEMP] / 454: not "wrong password"
    assert app.state.parts.passwords.verifications == before
    # Not a failure: nothing was counted.
    assert await redis.get(counter(pair)) is None


async def test_a_burst_from_one_network_overshoots_its_free_failures_by_at_most_the_burst(service):
    app, _, internal = await service(auth_ip_burst=3, auth_delay_base_s=60)
    before = app.state.parts.passwords.verifications
    attempts = [login(f"user{i}@alpha.test", "guess", "192.0.2.66") for i in range(20)]
    answers = await asyncio.gather(*(internal.post("/internal/v1/verify", json=a) for a in attempts))
    assert all(not a.json()["ok"] for a in answers)
    assert 10 <= app.state.parts.passwords.verifications - before <= 10 + 3
    assert (await verify(internal, "user0@alpha.test", "guess", "192.0.2.66"))["throttled"]


async def test_many_users_behind_one_network_may_log_in_at_once(service):
    _, admin, internal = await service()
    users = [f"user{i}@alpha.test" for i in range(12)]
    for address in users:
        await admin.post("/v1/users", json={"address": address, "password": "password-of-" + address})
    answers = await asyncio.gather(
        *(verify(internal, address, "password-of-" + address, "192.0.2.77") for address in users)
    )
    assert [a["address"] for a in answers] == users


async def test_ipv6_clients_are_counted_per_64(service):
    app, _, internal = await service(auth_delay_base_s=60)
    for host in (1, 2, 3):  # three addresses of one /64: one network
        assert await verify(internal, "bob@alpha.test", "guess", f"2001:db8:1:2::{host}") == FAILED
    assert (await verify(internal, "bob@alpha.test", "bobs-password", "2001:db8:1:2::99"))["throttled"]
    assert int(await app.state.parts.redis.get(counter("pair:2001:db8:1:2::/64|bob@alpha.test"))) == 4
    # The next /64 is another network.
    assert (await verify(internal, "bob@alpha.test", "bobs-password", "2001:db8:1:3::1"))["ok"]
