"""Aliases through the admin API and their expansion through the internal API (app in-process, real Redis)."""

import pytest


async def recipient(internal, address: str) -> dict:
    answer = await internal.get(f"/internal/v1/recipients/{address}")
    assert answer.status_code == 200
    return answer.json()


async def alias(admin, address: str, *destinations: str) -> None:
    answer = await admin.post("/v1/aliases", json={"address": address, "destinations": list(destinations)})
    assert answer.status_code == 201, answer.text


@pytest.fixture
async def site(admin):
    answer = await admin.post("/v1/domains", json={"name": "alpha.test", "postmaster": "Alice@alpha.test"})
    assert answer.status_code == 201
    for address in ("alice@alpha.test", "bob@alpha.test"):
        answer = await admin.post("/v1/users", json={"address": address, "password": "long enough"})
        assert answer.status_code == 201


async def test_domain_creation_makes_postmaster_and_abuse(admin, internal, site):
    listed = (await admin.get("/v1/aliases", params={"domain": "alpha.test"})).json()
    assert [(a["address"], a["destinations"]) for a in listed] == [
        ("abuse@alpha.test", ["alice@alpha.test"]),
        ("postmaster@alpha.test", ["alice@alpha.test"]),
    ]
    answer = await recipient(internal, "PostMaster@Alpha.TEST")
    assert answer["address"] == "postmaster@alpha.test"
    assert answer["exists"] is False and answer["destinations"] == ["alice@alpha.test"]


async def test_domain_without_postmaster_has_no_role_aliases(admin):
    await admin.post("/v1/domains", json={"name": "beta.test"})
    assert (await admin.get("/v1/aliases")).json() == []


async def test_add_get_list_delete(admin, site):
    created = await admin.post(
        "/v1/aliases",
        json={
            "address": "Team@alpha.test",
            "destinations": ["bob@alpha.test", "Carol@Remote.example", "bob@alpha.test"],
        },
    )
    assert created.status_code == 201
    assert created.json()["destinations"] == ["bob@alpha.test", "carol@remote.example"]
    one = (await admin.get("/v1/aliases/team@alpha.test")).json()
    assert one["address"] == "team@alpha.test" and one["destinations"] == [
        "bob@alpha.test",
        "carol@remote.example",
    ]
    page = await admin.get("/v1/aliases", params={"limit": 1, "offset": 2})
    assert page.headers["X-Total-Count"] == "3"
    assert [a["address"] for a in page.json()] == ["team@alpha.test"]
    assert (await admin.delete("/v1/aliases/team@alpha.test")).status_code == 204
    assert (await admin.get("/v1/aliases/team@alpha.test")).status_code == 404
    assert (await admin.delete("/v1/aliases/team@alpha.test")).status_code == 404


async def test_refusals(admin, site):
    body = {"address": "x@nowhere.test", "destinations": ["bob@alpha.test"]}
    assert (await admin.post("/v1/aliases", json=body)).status_code == 404  # unknown domain
    body = {"address": "bob@alpha.test", "destinations": ["alice@alpha.test"]}
    assert (await admin.post("/v1/aliases", json=body)).status_code == 409  # a user has it
    body = {"address": "postmaster@alpha.test", "destinations": ["bob@alpha.test"]}
    assert (await admin.post("/v1/aliases", json=body)).status_code == 409  # exists
    user = {"address": "postmaster@alpha.test", "password": "long enough"}
    assert (await admin.post("/v1/users", json=user)).status_code == 409  # an alias has it
    for destinations in ([], ["not an address"], [f"u{i}@alpha.test" for i in range(101)]):
        body = {"address": "list@alpha.test", "destinations": destinations}
        assert (await admin.post("/v1/aliases", json=body)).status_code == 422
    body = {"address": "list@alpha.test", "destinations": ["bob@alpha.test"], "extra": 1}
    assert (await admin.post("/v1/aliases", json=body)).status_code == 422
    assert (await admin.get("/v1/aliases", params={"domain": "nowhere.test"})).status_code == 404


async def test_nested_aliases_expand_to_final_recipients_once(admin, internal, site):
    await alias(admin, "inner@alpha.test", "bob@alpha.test", "dave@remote.example")
    await alias(admin, "outer@alpha.test", "inner@alpha.test", "alice@alpha.test", "bob@alpha.test")
    answer = await recipient(internal, "outer@alpha.test")
    assert answer["destinations"] == ["bob@alpha.test", "dave@remote.example", "alice@alpha.test"]


async def test_self_reference_and_cycles_end(admin, internal, site):
    await alias(admin, "self@alpha.test", "self@alpha.test", "bob@alpha.test")
    assert (await recipient(internal, "self@alpha.test"))["destinations"] == ["bob@alpha.test"]
    await alias(admin, "ping@alpha.test", "pong@alpha.test", "alice@alpha.test")
    await alias(admin, "pong@alpha.test", "ping@alpha.test", "bob@alpha.test")
    assert (await recipient(internal, "ping@alpha.test"))["destinations"] == [
        "bob@alpha.test",
        "alice@alpha.test",
    ]
    await alias(admin, "a@alpha.test", "b@alpha.test")
    await alias(admin, "b@alpha.test", "a@alpha.test")
    assert (await recipient(internal, "a@alpha.test"))["destinations"] == []  # a pure loop: nothing


async def test_depth_and_width_limits(make_settings):
    import httpx

    from services.auth.app import create_app
    from tests.unit.auth.conftest import ADMIN_TOKEN, SERVICE_TOKEN

    app = create_app(make_settings(auth_alias_max_depth=3, auth_alias_max_recipients=3))
    transport = httpx.ASGITransport(app=app)
    try:
        async with (
            httpx.AsyncClient(
                transport=transport, base_url="http://a", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
            ) as admin,
            httpx.AsyncClient(
                transport=transport, base_url="http://a", headers={"Authorization": f"Bearer {SERVICE_TOKEN}"}
            ) as internal,
        ):
            await admin.post("/v1/domains", json={"name": "alpha.test"})
            await alias(admin, "d1@alpha.test", "d2@alpha.test")
            await alias(admin, "d2@alpha.test", "d3@alpha.test")
            await alias(admin, "d3@alpha.test", "x@alpha.test")
            await alias(admin, "d0@alpha.test", "d1@alpha.test")
            assert (await recipient(internal, "d1@alpha.test"))["destinations"] == [
                "x@alpha.test"
            ]  # 3 levels
            assert (await recipient(internal, "d0@alpha.test"))["destinations"] == []  # 4: too deep
            await alias(admin, "three@alpha.test", "a@r.example", "b@r.example", "c@r.example")
            await alias(admin, "four@alpha.test", "three@alpha.test", "d@r.example")
            assert len((await recipient(internal, "three@alpha.test"))["destinations"]) == 3
            assert (await recipient(internal, "four@alpha.test"))["destinations"] == []
    finally:
        await app.state.parts.redis.aclose()


async def test_deleting_a_domain_deletes_its_aliases(admin, internal, site):
    assert (await admin.delete("/v1/domains/alpha.test", params={"force": "true"})).status_code == 204
    assert (await admin.get("/v1/aliases")).json() == []
    await admin.post("/v1/domains", json={"name": "alpha.test"})
    assert (await recipient(internal, "postmaster@alpha.test"))["destinations"] is None


async def test_aliases_need_the_admin_token(internal):
    assert (await internal.get("/v1/aliases")).status_code == 401


async def test_openapi_describes_aliases(admin):
    schema = (await admin.get("/openapi.json")).json()
    assert {"post", "get"} <= set(schema["paths"]["/v1/aliases"])
    assert "delete" in schema["paths"]["/v1/aliases/{address}"]
    assert "postmaster" in schema["components"]["schemas"]["DomainCreate"]["properties"]
    assert "destinations" in schema["components"]["schemas"]["RecipientInfo"]["properties"]
