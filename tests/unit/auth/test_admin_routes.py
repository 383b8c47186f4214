"""The admin API's routes and error answers (app in-process, real Redis)."""

import pytest

from services.auth.directory import user_key


async def add(admin, *domains: str) -> None:
    for name in domains:
        assert (await admin.post("/v1/domains", json={"name": name})).status_code == 201


async def test_domains_are_added_listed_and_deleted(admin):
    created = await admin.post("/v1/domains", json={"name": "Bücher.TEST"})
    assert created.status_code == 201
    assert created.json()["name"] == "xn--bcher-kva.test"
    await add(admin, "alpha.test")
    listed = (await admin.get("/v1/domains")).json()
    assert [d["name"] for d in listed] == ["alpha.test", "xn--bcher-kva.test"]
    assert all(d["created_at"] for d in listed)
    assert (await admin.delete("/v1/domains/B%C3%BCcher.test")).status_code == 204
    assert [d["name"] for d in (await admin.get("/v1/domains")).json()] == ["alpha.test"]


async def test_domain_errors_say_what_is_wrong(admin):
    await add(admin, "alpha.test")
    duplicate = await admin.post("/v1/domains", json={"name": "ALPHA.test"})
    assert duplicate.status_code == 409
    assert duplicate.json() == {"detail": "domain alpha.test already exists"}
    invalid = await admin.post("/v1/domains", json={"name": "not a domain"})
    assert invalid.status_code == 422
    assert "not a valid domain name" in invalid.text
    assert (await admin.post("/v1/domains", json={"name": "x" * 300 + ".test"})).status_code == 422
    assert (await admin.post("/v1/domains", json={})).status_code == 422
    assert (await admin.post("/v1/domains", json={"name": "a.test", "extra": 1})).status_code == 422
    missing = await admin.delete("/v1/domains/beta.test")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "domain beta.test does not exist"}
    assert (await admin.delete("/v1/domains/not_a_domain")).status_code == 400


async def test_a_domain_with_users_is_deleted_only_with_force(admin, redis_url):
    await add(admin, "alpha.test", "beta.test")
    for address in ("a@alpha.test", "b@alpha.test", "c@beta.test"):
        assert (await admin.post("/v1/users", json={"address": address, "password": "password1"})).is_success
    refused = await admin.delete("/v1/domains/alpha.test")
    assert refused.status_code == 409
    assert "2 user(s)" in refused.json()["detail"]
    assert (await admin.get("/v1/users/a@alpha.test")).status_code == 200
    assert (await admin.delete("/v1/domains/alpha.test", params={"force": "true"})).status_code == 204
    assert (await admin.get("/v1/users/a@alpha.test")).status_code == 404
    assert [u["address"] for u in (await admin.get("/v1/users")).json()] == ["c@beta.test"]
    # Re-creating the domain does not resurrect its old users.
    await add(admin, "alpha.test")
    assert (await admin.get("/v1/users", params={"domain": "alpha.test"})).json() == []


async def test_users_are_added_read_changed_and_deleted(admin):
    await add(admin, "alpha.test")
    created = await admin.post(
        "/v1/users", json={"address": "Bob@ALPHA.test", "password": "bobs-password", "quota_bytes": 5000}
    )
    assert created.status_code == 201
    body = created.json()
    assert body["address"] == "bob@alpha.test"
    assert (body["enabled"], body["quota_bytes"]) == (True, 5000)

    assert (await admin.get("/v1/users/BOB@alpha.test")).json() == body
    patched = await admin.patch("/v1/users/bob@alpha.test", json={"enabled": False})
    assert patched.json() == {**body, "enabled": False}
    # quota_bytes given as null removes the limit; left out, it stays.
    assert (await admin.patch("/v1/users/bob@alpha.test", json={"quota_bytes": None})).json()[
        "quota_bytes"
    ] is None
    assert (await admin.patch("/v1/users/bob@alpha.test", json={"quota_bytes": 7})).json()["quota_bytes"] == 7
    unchanged = await admin.patch("/v1/users/bob@alpha.test", json={})
    assert unchanged.json() == {**body, "enabled": False, "quota_bytes": 7}

    assert (await admin.delete("/v1/users/bob@alpha.test")).status_code == 204
    assert (await admin.get("/v1/users/bob@alpha.test")).status_code == 404
    assert (await admin.delete("/v1/users/bob@alpha.test")).status_code == 404


async def test_user_errors_say_what_is_wrong(admin):
    await add(admin, "alpha.test")
    unknown_domain = await admin.post("/v1/users", json={"address": "bob@beta.test", "password": "password1"})
    assert unknown_domain.status_code == 404
    assert unknown_domain.json() == {"detail": "domain beta.test does not exist"}
    assert (
        await admin.post("/v1/users", json={"address": "bob@alpha.test", "password": "password1"})
    ).is_success
    duplicate = await admin.post("/v1/users", json={"address": "BOB@alpha.test", "password": "password2"})
    assert duplicate.status_code == 409
    assert duplicate.json() == {"detail": "user bob@alpha.test already exists"}

    for body in (
        {"address": "bo..b@alpha.test", "password": "password1"},
        {"address": "bob@alpha.test"},
        {"address": "carol@alpha.test", "password": "sekret"},
        {"address": "carol@alpha.test", "password": "sekret" * 200},
        {"address": "carol@alpha.test", "password": "password1", "quota_bytes": -1},
        {"address": "carol@alpha.test", "password": "password1", "password_hash": "$argon2id$..."},
    ):
        answer = await admin.post("/v1/users", json=body)
        assert answer.status_code == 422, body
        assert "sekret" not in answer.text  # a refused password is not echoed back
    too_short = await admin.post("/v1/users", json={"address": "carol@alpha.test", "password": "sekret"})
    assert "at least 8 characters" in too_short.text

    assert (await admin.get("/v1/users/carol@alpha.test")).json() == {
        "detail": "user carol@alpha.test does not exist"
    }
    assert (await admin.get("/v1/users/not-an-address")).status_code == 400
    assert (await admin.patch("/v1/users/carol@alpha.test", json={"enabled": True})).status_code == 404
    assert (await admin.patch("/v1/users/bob@alpha.test", json={"enabled": "maybe"})).status_code == 422
    assert (await admin.patch("/v1/users/bob@alpha.test", json={"password": "short"})).status_code == 422


async def test_users_are_listed_in_pages_and_by_domain(admin):
    await add(admin, "alpha.test", "beta.test")
    for address in ("d@alpha.test", "a@alpha.test", "c@alpha.test", "b@beta.test"):
        assert (await admin.post("/v1/users", json={"address": address, "password": "password1"})).is_success
    everyone = await admin.get("/v1/users")
    assert [u["address"] for u in everyone.json()] == [
        "a@alpha.test",
        "b@beta.test",
        "c@alpha.test",
        "d@alpha.test",
    ]
    assert everyone.headers["X-Total-Count"] == "4"
    page = await admin.get("/v1/users", params={"domain": "ALPHA.test", "limit": 2, "offset": 1})
    assert [u["address"] for u in page.json()] == ["c@alpha.test", "d@alpha.test"]
    assert page.headers["X-Total-Count"] == "3"
    assert (await admin.get("/v1/users", params={"domain": "gamma.test"})).json() == {
        "detail": "domain gamma.test does not exist"
    }
    for params in ({"limit": 0}, {"limit": 1001}, {"offset": -1}):
        assert (await admin.get("/v1/users", params=params)).status_code == 422


async def test_the_password_hash_never_appears_in_an_answer(admin, app):
    await add(admin, "alpha.test")
    answers = [await admin.post("/v1/users", json={"address": "bob@alpha.test", "password": "password1"})]
    answers.append(await admin.get("/v1/users/bob@alpha.test"))
    answers.append(await admin.get("/v1/users"))
    answers.append(await admin.patch("/v1/users/bob@alpha.test", json={"password": "password2"}))
    stored = await app.state.parts.redis.hget(user_key("bob@alpha.test"), "password_hash")
    assert stored.startswith(b"$argon2id$")
    for answer in answers:
        assert answer.is_success
        assert "argon2" not in answer.text and "hash" not in answer.text
        assert "password" not in answer.text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/domains"),
        ("GET", "/v1/domains"),
        ("DELETE", "/v1/domains/alpha.test"),
        ("POST", "/v1/users"),
        ("GET", "/v1/users"),
        ("GET", "/v1/users/bob@alpha.test"),
        ("PATCH", "/v1/users/bob@alpha.test"),
        ("DELETE", "/v1/users/bob@alpha.test"),
    ],
)
async def test_every_admin_route_wants_the_admin_token(admin, internal, method, path):
    body = {"json": {}} if method in ("POST", "PATCH") else {}
    missing = await admin.request(method, path, headers={"Authorization": ""}, **body)
    assert missing.status_code == 401
    assert missing.json() == {"detail": "missing bearer token"}
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert (await internal.request(method, path, **body)).status_code == 401
    wrong = await admin.request(method, path, headers={"Authorization": "Bearer nope"}, **body)
    assert wrong.json() == {"detail": "wrong bearer token"}
