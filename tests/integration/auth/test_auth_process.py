"""The auth service as a real process (`python -m services.auth`) on real Redis, reached over HTTP."""

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis
from passlib.hash import bcrypt, sha512_crypt

from services.auth.directory import user_key
from services.auth.throttle import PREFIX, pair_name
from tests.fixtures.auth import start_auth_service

FAILED = {"ok": False, "address": None, "throttled": False, "retry_after_s": None}


def verify(service, username: str, password: str, client_ip: str | None = "127.0.0.1", token=None) -> dict:
    answer = httpx.post(
        f"{service.url}/internal/v1/verify",
        json={"username": username, "password": password, "service": "pop3", "client_ip": client_ip},
        headers={"Authorization": f"Bearer {token or service.service_token}"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_tokens_are_checked_and_never_interchangeable(auth_service):
    service = auth_service
    admin_path, internal_path = f"{service.url}/v1/domains", f"{service.url}/internal/v1/domains"

    def status(url: str, authorization: str | None) -> int:
        return httpx.get(url, headers={"Authorization": authorization} if authorization else {}).status_code

    assert status(admin_path, f"Bearer {service.admin_token}") == 200
    assert status(internal_path, f"Bearer {service.service_token}") == 200
    for url in (admin_path, internal_path):
        assert status(url, None) == 401
        assert status(url, "Bearer wrong") == 401
        assert status(url, f"Basic {service.admin_token}") == 401
    assert status(admin_path, f"Bearer {service.service_token}") == 401
    assert status(internal_path, f"Bearer {service.admin_token}") == 401
    assert status(admin_path, f"Bearer {service.admin_token}x") == 401
    answer = httpx.post(f"{service.url}/internal/v1/verify", json={}, headers={"Authorization": "Bearer x"})
    assert answer.status_code == 401


def test_logins_unknown_users_and_wrong_passwords_answer_alike(auth_service):
    auth_service.add_domain("alpha.test")
    auth_service.add_user("bob@alpha.test", "bobs-password")
    ok = verify(auth_service, "Bob@Alpha.test", "bobs-password")
    assert ok == {"ok": True, "address": "bob@alpha.test", "throttled": False, "retry_after_s": None}
    assert verify(auth_service, "bob@alpha.test", "wrong-password", "127.0.0.2") == FAILED
    assert verify(auth_service, "nobody@alpha.test", "wrong-password", "127.0.0.3") == FAILED
    auth_service.patch_user("bob@alpha.test", enabled=False)
    assert verify(auth_service, "bob@alpha.test", "bobs-password", "127.0.0.4") == FAILED
    auth_service.patch_user("bob@alpha.test", enabled=True, password="new-password")
    assert verify(auth_service, "bob@alpha.test", "bobs-password", "127.0.0.5") == FAILED
    assert verify(auth_service, "bob@alpha.test", "new-password", "127.0.0.5")["ok"]


def pair_failures(redis_url: str, username: str, client_ip: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.get(f"{PREFIX}{pair_name(username, client_ip)}:failures") or 0)
    finally:
        client.close()


def test_a_guesser_is_delayed_more_each_time_while_the_user_gets_in_from_elsewhere(
    redis_url, service_factory
):
    # Delays long enough that none runs out while the test runs, however loaded the machine.
    service = start_auth_service(service_factory, redis_url, YUBIN_AUTH_DELAY_BASE_S="60")
    service.add_domain("alpha.test")
    service.add_user("alice@alpha.test", "alices-password")

    for username in ("alice@alpha.test", "ghost@alpha.test"):  # exists or not: the same answers
        assert [verify(service, username, f"guess-{i}", "127.0.0.2") for i in range(3)] == [FAILED] * 3
        refused = [verify(service, username, "alices-password", "127.0.0.2") for _ in range(3)]
        assert refused == [
            {"ok": False, "address": None, "throttled": True, "retry_after_s": delay}
            for delay in (120, 240, 480)
        ]
        assert pair_failures(redis_url, username, "127.0.0.2") == 6

    # Alice from another address, with her password: in at once, however long the guesser must wait.
    assert (
        verify(service, "alice@alpha.test", "alices-password", "127.0.0.3")["address"] == "alice@alpha.test"
    )
    assert verify(service, "alice@alpha.test", "alices-password", "127.0.0.2")["throttled"]
    service.admin.close()


def test_after_its_delay_the_pair_gets_one_check_again(redis_url, service_factory):
    service = start_auth_service(service_factory, redis_url, YUBIN_AUTH_DELAY_BASE_S="3")
    service.add_domain("alpha.test")
    service.add_user("alice@alpha.test", "alices-password")
    for _ in range(3):
        assert verify(service, "alice@alpha.test", "guess", "127.0.0.2") == FAILED
    refused = verify(service, "alice@alpha.test", "alices-password", "127.0.0.2")
    assert (refused["throttled"], refused["retry_after_s"]) == (True, 6)
    time.sleep(6.2)  # the delay it was told runs out: the right password is checked again
    assert verify(service, "alice@alpha.test", "alices-password", "127.0.0.2")["ok"]
    # That success forgave the pair: its next typo is free again.
    assert verify(service, "alice@alpha.test", "typo", "127.0.0.2") == FAILED
    assert pair_failures(redis_url, "alice@alpha.test", "127.0.0.2") == 1
    service.admin.close()


def test_a_distributed_guesser_cannot_lock_the_user_out_of_a_known_address(redis_url, service_factory):
    service = start_auth_service(
        service_factory, redis_url, YUBIN_AUTH_USER_FREE_FAILURES="4", YUBIN_AUTH_DELAY_BASE_S="60"
    )
    service.add_domain("alpha.test")
    service.add_user("alice@alpha.test", "alices-password")
    assert verify(service, "alice@alpha.test", "alices-password", "127.0.0.3")["ok"]  # her usual address
    for username in ("alice@alpha.test", "ghost@alpha.test"):
        for i in range(4):  # one guess from each of many addresses
            assert verify(service, username, "guess", f"127.0.1.{i}") == FAILED
        refused = verify(service, username, "alices-password", "127.0.1.99")
        assert refused == {"ok": False, "address": None, "throttled": True, "retry_after_s": 120}
    assert verify(service, "alice@alpha.test", "alices-password", "127.0.0.3")["ok"]
    service.admin.close()


def test_concurrent_logins_of_one_user_succeed_and_concurrent_guesses_are_counted_exactly(
    redis_url, service_factory
):
    """With the real argon2 costs: eight sessions of one user logging in at once all get in (attempts in
    progress make others wait, they do not count as failures); twenty guesses at once from one address
    get exactly the three checks the pair allows, and all twenty are counted."""
    # Those over the limit wait for the checks in progress; on a loaded machine three real argon2 hashes
    # can take longer than the default 2 s before such a login is answered "busy".
    auth_service = start_auth_service(service_factory, redis_url, YUBIN_AUTH_LOGIN_WAIT_S="30")
    auth_service.add_domain("alpha.test")
    auth_service.add_user("bob@alpha.test", "bobs-password")
    auth_service.add_user("carol@alpha.test", "carols-password")
    with ThreadPoolExecutor(20) as pool:
        good = list(
            pool.map(lambda _: verify(auth_service, "bob@alpha.test", "bobs-password", "127.0.0.5"), range(8))
        )
        guesses = list(
            pool.map(lambda i: verify(auth_service, "carol@alpha.test", f"guess-{i}", "127.0.0.2"), range(20))
        )
    assert [answer["address"] for answer in good] == ["bob@alpha.test"] * 8
    assert sum(answer == FAILED for answer in guesses) == 3
    assert sum(answer["throttled"] for answer in guesses) == 17
    assert pair_failures(redis_url, "carol@alpha.test", "127.0.0.2") == 20
    auth_service.admin.close()


@pytest.mark.parametrize(
    "old_hash",
    [bcrypt.using(rounds=10).hash, sha512_crypt.using(rounds=5000).hash],  # as other systems store them
    ids=["bcrypt", "sha512_crypt"],
)
def test_an_imported_old_hash_is_upgraded_to_argon2_on_login(auth_service, redis_url, old_hash):
    auth_service.add_domain("alpha.test")
    auth_service.add_user("bob@alpha.test", "placeholder-password")
    client = redis.Redis.from_url(redis_url)
    imported = old_hash("bobs-old-password")
    client.hset(user_key("bob@alpha.test"), "password_hash", imported)

    assert verify(auth_service, "bob@alpha.test", "wrong-password")["ok"] is False
    assert client.hget(user_key("bob@alpha.test"), "password_hash").decode() == imported
    assert verify(auth_service, "bob@alpha.test", "bobs-old-password")["ok"]
    upgraded = client.hget(user_key("bob@alpha.test"), "password_hash").decode()
    assert upgraded.startswith("$argon2id$")
    assert verify(auth_service, "bob@alpha.test", "bobs-old-password")["ok"]
    assert "password hash upgraded" in auth_service.process.logs()
    client.close()


def test_users_and_domains_survive_a_redis_restart(redis_factory, service_factory):
    server = redis_factory()
    service = start_auth_service(service_factory, server.url)
    service.add_domain("alpha.test")
    service.add_user("bob@alpha.test", "bobs-password", quota_bytes=1234)

    server.kill()  # no graceful shutdown: only what appendfsync always put on disk
    assert httpx.get(f"{service.url}/healthz").status_code == 503
    answer = httpx.get(f"{service.url}/v1/users", headers={"Authorization": f"Bearer {service.admin_token}"})
    assert answer.status_code == 503
    assert answer.json() == {"detail": "user directory unavailable, try again"}
    server.start()

    assert httpx.get(f"{service.url}/healthz").status_code == 200
    assert verify(service, "bob@alpha.test", "bobs-password")["ok"]
    assert service.admin.get("/v1/users/bob@alpha.test").json()["quota_bytes"] == 1234
    assert [d["name"] for d in service.admin.get("/v1/domains").json()] == ["alpha.test"]
    service.admin.close()


@pytest.mark.parametrize("missing", ["YUBIN_ADMIN_TOKEN", "YUBIN_SERVICE_TOKEN"])
def test_the_service_refuses_to_start_without_its_tokens(service_factory, redis_url, missing, monkeypatch):
    from tests.fixtures.auth import auth_env
    from tests.fixtures.ports import free_port

    monkeypatch.delenv(missing, raising=False)
    env = auth_env(redis_url, free_port())
    del env[missing]
    process = service_factory("services.auth", env)
    assert process.proc.wait(timeout=20) == 2
    assert "refusing to start" in process.logs()
    assert missing in process.logs()


def test_openapi_docs_are_served(auth_service):
    assert httpx.get(f"{auth_service.url}/docs").status_code == 200
    schema = httpx.get(f"{auth_service.url}/openapi.json").json()
    assert {"/v1/users", "/internal/v1/verify", "/healthz"} <= set(schema["paths"])


def test_sigterm_stops_the_service_cleanly(auth_service):
    assert auth_service.process.stop() == 0


def test_idna_domains_are_stored_and_matched_in_ascii(auth_service):
    assert auth_service.add_domain("Bücher.TEST")["name"] == "xn--bcher-kva.test"
    assert auth_service.add_user("Anna@bücher.test", "annas-password")["address"] == "anna@xn--bcher-kva.test"
    assert verify(auth_service, "ANNA@Bücher.test", "annas-password")["address"] == "anna@xn--bcher-kva.test"
    headers = {"Authorization": f"Bearer {auth_service.service_token}"}
    answer = httpx.get(f"{auth_service.url}/internal/v1/recipients/anna@B%C3%BCcher.test", headers=headers)
    assert answer.json()["exists"] and answer.json()["address"] == "anna@xn--bcher-kva.test"
    domains = httpx.get(f"{auth_service.url}/internal/v1/domains", headers=headers).json()
    assert domains == {"domains": ["xn--bcher-kva.test"]}
