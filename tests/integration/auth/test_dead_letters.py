"""Dead letters are visible and manageable: the admin API (`/v1/queue/dead`) and `yubin queue dead`."""

import asyncio
import json

import pytest

from shared.body_store import RedisBodyStore
from shared.bus import Consumer
from shared.config import BusSettings
from shared.enqueue import enqueue
from shared.models import Envelope
from shared.redis_client import connect
from shared.streams import DELIVERY_GROUP, LOCAL_DELIVERY, OUTBOUND
from tests.fixtures.auth import AuthService
from yubin.cli.main import main

SETTINGS = BusSettings(bus_block_ms=50)


async def dead_letter_one(redis_url: str, sender: str = "alice@alpha.test") -> tuple[Envelope, str]:
    """Enqueue a message for delivery and outbound, and have delivery give up on its entry."""
    redis = connect(redis_url)
    try:
        envelope = Envelope(sender=sender, recipients=["bob@alpha.test"], body_id="-")
        published = await enqueue(
            redis, b"Subject: x\r\n\r\nbody\r\n", {LOCAL_DELIVERY: envelope, OUTBOUND: envelope}
        )
        consumer = Consumer(redis, LOCAL_DELIVERY, DELIVERY_GROUP, SETTINGS, name="c")
        await consumer.ensure_group()
        [entry] = await consumer.read_new(1)
        await consumer.dead_letter(entry, "KeyError: 'a bug'")
        return published[LOCAL_DELIVERY], entry.data.decode()
    finally:
        await redis.aclose()


def yubin(auth_service: AuthService, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(
        ["queue", "dead", *argv, "--admin-url", auth_service.url, "--token", auth_service.admin_token]
    )
    return code, capsys.readouterr().out


def test_list_show_retry(auth_service: AuthService, capsys: pytest.CaptureFixture[str]) -> None:
    envelope, data = asyncio.run(dead_letter_one(auth_service.redis_url, sender="eve\x1b[2J@alpha.test"))
    listed = auth_service.admin.get("/v1/queue/dead").json()
    assert listed["total"] == 1
    [dead] = listed["dead_letters"]
    assert dead["queue_id"] == envelope.queue_id
    assert dead["stream"] == LOCAL_DELIVERY
    assert dead["reason"] == "KeyError: 'a bug'"

    code, out = yubin(auth_service, capsys, "list")
    assert code == 0 and envelope.queue_id in out
    assert "\x1b" not in out and "\\x1b[2J" in out  # what came with the mail cannot drive the terminal

    code, out = yubin(auth_service, capsys, "show", dead["id"], "--json")
    assert code == 0 and json.loads(out)["data"] == data

    code, out = yubin(auth_service, capsys, "retry", dead["id"])
    assert code == 0 and LOCAL_DELIVERY in out
    assert auth_service.admin.get("/v1/queue/dead").json()["total"] == 0
    redis = connect(auth_service.redis_url)

    async def back_on_the_stream() -> list[Envelope]:
        try:
            consumer = Consumer(redis, LOCAL_DELIVERY, DELIVERY_GROUP, SETTINGS, name="c2")
            return [e.parse(Envelope) for e in await consumer.read_new(10)]
        finally:
            await redis.aclose()

    assert asyncio.run(back_on_the_stream()) == [envelope]

    code, _ = yubin(auth_service, capsys, "retry", dead["id"])
    assert code == 5  # gone: 404, refused for good
    assert auth_service.admin.get("/v1/queue/dead/not-an-id").status_code == 404
    assert (
        auth_service.admin.get("/v1/queue/dead", headers={"Authorization": "Bearer wrong"}).status_code == 401
    )


def test_delete_releases_the_body(auth_service: AuthService, capsys: pytest.CaptureFixture[str]) -> None:
    envelope, _ = asyncio.run(dead_letter_one(auth_service.redis_url))
    [dead] = auth_service.admin.get("/v1/queue/dead").json()["dead_letters"]

    async def holders() -> set[str]:
        redis = connect(auth_service.redis_url)
        try:
            return await RedisBodyStore(redis).holders(envelope.body_id)
        finally:
            await redis.aclose()

    assert asyncio.run(holders()) == {
        f"{LOCAL_DELIVERY}:{envelope.queue_id}",
        f"{OUTBOUND}:{envelope.queue_id}",
    }
    code, _ = yubin(auth_service, capsys, "delete", dead["id"])
    assert code == 0
    assert asyncio.run(holders()) == {f"{OUTBOUND}:{envelope.queue_id}"}  # the outbound copy still needs it
    assert auth_service.admin.get(f"/v1/queue/dead/{dead['id']}").status_code == 404
    client = auth_service.admin
    assert client.delete(f"/v1/queue/dead/{dead['id']}").status_code == 404
