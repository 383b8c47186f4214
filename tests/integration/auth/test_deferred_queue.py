"""The deferred queue (`/v1/queue/deferred`, `yubin queue deferred`): see, retry, bounce, delete."""

import asyncio
import time

import pytest

from services.delivery.retry_queue import delivery_retry_queue
from services.relay.retry import relay_retry_queue
from shared.body_store import RedisBodyStore, holder, new_body_id
from shared.models import Envelope, RecipientState, RecipientStatus, TraceEvent
from shared.redis_client import connect
from shared.retry_queue import DELIVERY_RETRY_KEY, ERRORS_SUFFIX, RELAY_RETRY_KEY
from shared.streams import LOCAL_DELIVERY, OUTBOUND, TRACE
from tests.fixtures.auth import AuthService
from yubin.cli.main import main

BODY = b"Message-ID: <m1@alpha.test>\r\nSubject: stuck\r\n\r\nbody\r\n"


def defer_one(redis_url: str, sender: str = "alice@alpha.test", local_too: bool = True) -> Envelope:
    """A message to a remote and a local recipient, deferred by the relay and by local delivery."""

    async def go() -> Envelope:
        redis = connect(redis_url)
        try:
            body_id = new_body_id()
            envelope = Envelope(
                sender=sender,
                recipients=["carol@gamma.test"],
                message_id="<m1@alpha.test>",
                body_id=body_id,
                size=len(BODY),
                attempts=2,
            )
            local = envelope.model_copy(update={"recipients": ["bob@alpha.test"], "attempts": 1})
            queues = [(relay_retry_queue(redis), OUTBOUND, envelope, "4.4.1", "no answer from mx.gamma.test")]
            if local_too:
                queues.append((delivery_retry_queue(redis), LOCAL_DELIVERY, local, "4.2.2", "mailbox full"))
            async with redis.pipeline(transaction=True) as pipe:
                holders = [holder(stream, envelope.queue_id) for _, stream, *_ in queues]
                RedisBodyStore(pipe).stage_put(pipe, body_id, BODY, holders)
                for queue, _stream, env, status, diagnostic in queues:
                    deferred = RecipientStatus(
                        recipient=env.recipients[0],
                        state=RecipientState.DEFERRED,
                        status=status,
                        diagnostic=diagnostic,
                    )
                    queue.stage_defer(pipe, env, time.time() + 3600, [deferred])
                await pipe.execute()
            return envelope
        finally:
            await redis.aclose()

    return asyncio.run(go())


def look(redis_url: str) -> dict:
    async def go() -> dict:
        redis = connect(redis_url)
        try:
            trace = [TraceEvent.model_validate_json(f[b"data"]) for _, f in await redis.xrange(TRACE)]
            return {
                "outbound": [f[b"data"] for _, f in await redis.xrange(OUTBOUND)],
                "local": [
                    Envelope.model_validate_json(f[b"data"]) for _, f in await redis.xrange(LOCAL_DELIVERY)
                ],
                "sets": await redis.zcard(RELAY_RETRY_KEY) + await redis.zcard(DELIVERY_RETRY_KEY),
                "errors": await redis.hlen(RELAY_RETRY_KEY + ERRORS_SUFFIX)
                + await redis.hlen(DELIVERY_RETRY_KEY + ERRORS_SUFFIX),
                "bodies": [k.decode() for k in await redis.keys("yubin:body:*")],
                "trace": trace,
            }
        finally:
            await redis.aclose()

    return asyncio.run(go())


def yubin(auth_service: AuthService, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(
        ["queue", "deferred", *argv, "--admin-url", auth_service.url, "--token", auth_service.admin_token]
    )
    return code, capsys.readouterr().out


def test_list_shows_why_and_when(auth_service: AuthService, capsys: pytest.CaptureFixture[str]) -> None:
    envelope = defer_one(auth_service.redis_url, sender="eve\x1b[2J@alpha.test")
    listed = auth_service.admin.get("/v1/queue/deferred").json()
    assert listed["total"] == 2
    by_queue = {m["queue"]: m for m in listed["deferred"]}
    relay = by_queue["relay"]
    assert relay["queue_id"] == envelope.queue_id and relay["message_id"] == "<m1@alpha.test>"
    assert relay["recipients"] == ["carol@gamma.test"] and relay["attempts"] == 2
    assert relay["last_error"] == "4.4.1 no answer from mx.gamma.test"
    assert relay["next_attempt_at"] > relay["received_at"]
    assert by_queue["delivery"]["errors"] == {"bob@alpha.test": "4.2.2 mailbox full"}

    code, out = yubin(auth_service, capsys, "list")
    assert code == 0 and envelope.queue_id in out and "mailbox full" in out
    assert "\x1b" not in out  # what came with the mail cannot drive the terminal
    schema = auth_service.admin.get("/openapi.json").json()
    assert "/v1/queue/deferred/{queue_id}/bounce" in schema["paths"]
    assert "DeferredMessage" in schema["components"]["schemas"]


def test_retry_now_puts_it_back_on_its_streams(
    auth_service: AuthService, capsys: pytest.CaptureFixture[str]
) -> None:
    envelope = defer_one(auth_service.redis_url)
    code, out = yubin(auth_service, capsys, "retry", envelope.queue_id)
    assert code == 0 and "retrying" in out
    seen = look(auth_service.redis_url)
    assert seen["sets"] == 0 and seen["errors"] == 0
    assert [Envelope.model_validate_json(d).recipients for d in seen["outbound"]] == [["carol@gamma.test"]]
    assert [e.recipients for e in seen["local"]] == [["bob@alpha.test"]]
    actions = [(e.event, e.detail["queue"]) for e in seen["trace"] if e.service == "admin"]
    assert sorted(actions) == [("retry-now", "delivery"), ("retry-now", "relay")]
    assert len(seen["bodies"]) == 2  # body and holders: still needed by the retries

    code, _ = yubin(auth_service, capsys, "retry", envelope.queue_id)
    assert code == 5  # nothing deferred any more: 404
    assert auth_service.admin.post("/v1/queue/deferred/no*such/retry").status_code == 404


def test_bounce_now_sends_a_dsn_linked_to_the_message(auth_service: AuthService) -> None:
    auth_service.add_domain("alpha.test")
    envelope = defer_one(auth_service.redis_url, local_too=False)
    answer = auth_service.admin.post(f"/v1/queue/deferred/{envelope.queue_id}/bounce")
    assert answer.status_code == 200, answer.text
    assert [m["queue"] for m in answer.json()["messages"]] == ["relay"]
    seen = look(auth_service.redis_url)
    assert seen["sets"] == 0 and seen["outbound"] == []
    [dsn] = seen["local"]  # alice is local: her DSN goes to local delivery
    assert dsn.sender == "" and dsn.recipients == ["alice@alpha.test"]
    events = {e.event: e for e in seen["trace"]}
    assert events["bounce-now"].queue_id == envelope.queue_id
    assert events["bounce-now"].detail["notice_queue_id"] == dsn.queue_id
    assert events["bounce"].detail["notice_queue_id"] == dsn.queue_id
    # Searching for the DSN finds the message it reports on, and the other way round.
    linked = auth_service.admin.get("/v1/trace", params={"queue_id": dsn.queue_id}).json()["events"]
    assert {e["queue_id"] for e in linked} == {envelope.queue_id, dsn.queue_id}


def test_delete_releases_the_body(auth_service: AuthService, capsys: pytest.CaptureFixture[str]) -> None:
    envelope = defer_one(auth_service.redis_url)
    code, _ = yubin(auth_service, capsys, "delete", envelope.queue_id)
    assert code == 0
    seen = look(auth_service.redis_url)
    assert seen["sets"] == 0 and seen["outbound"] == [] and seen["local"] == []
    assert seen["bodies"] == []  # both holders released: the body is gone
    assert sorted(e.event for e in seen["trace"]) == ["deleted", "deleted"]
    assert auth_service.admin.delete(f"/v1/queue/deferred/{envelope.queue_id}").status_code == 404
