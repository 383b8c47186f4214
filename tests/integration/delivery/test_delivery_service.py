"""The delivery service as a real process: envelopes in through enqueue, files out in the Maildirs."""

from email import message_from_bytes
from pathlib import Path

from redis.asyncio import Redis

from services.delivery.mailbox_files import ensure_maildir
from services.delivery.retry_queue import DEFERRED
from shared.body_store import RedisBodyStore
from shared.maildir import mailbox_path, maildir_name, parse_sizes, to_wire
from shared.streams import LOCAL_DELIVERY, OUTBOUND
from tests.integration.delivery.mailboxes import (
    body_exists,
    body_released,
    files,
    pending,
    read,
    send,
    stream_envelopes,
    trace_events,
    wait_until,
)

BODY = "From: carol@beta.test\r\nSubject: Grüße\r\nMessage-ID: <m@beta.test>\r\n\r\nこんにちは\r\nüber\r\n".encode()


async def test_each_recipient_gets_exact_bytes_and_the_body_is_released(
    start_delivery, redis: Redis, mail_root: Path
) -> None:
    service = start_delivery()
    envelope = await send(
        redis, BODY, "carol@beta.test", ["ann@alpha.test", "bob@alpha.test"], message_id="<m@beta.test>"
    )

    async def both_stored() -> bool:
        return bool(files(mail_root, "ann@alpha.test") and files(mail_root, "bob@alpha.test"))

    await wait_until(both_stored, "a file in both Maildirs")
    await wait_until(lambda: body_released(redis, envelope), "body released")
    for address in ("ann@alpha.test", "bob@alpha.test"):
        [name] = files(mail_root, address)
        data = read(mail_root, address, name)
        assert data == (
            f"Return-Path: <carol@beta.test>\nDelivered-To: {address}\n".encode()
            + BODY.replace(b"\r\n", b"\n")
        )
        assert parse_sizes(name) == (len(data), len(to_wire(data)))
        assert files(mail_root, address, "tmp") == []
    assert await pending(redis) == 0
    stored = await trace_events(redis, "stored")
    assert sorted(e.detail["recipient"] for e in stored) == ["ann@alpha.test", "bob@alpha.test"]
    assert {e.queue_id for e in stored} == {envelope.queue_id}
    assert service.stop() == 0  # SIGTERM: a clean exit
    stored_log = [line for line in service.logs().splitlines() if '"msg": "stored"' in line]
    assert len(stored_log) == 2
    assert all(envelope.queue_id in line and "<m@beta.test>" in line for line in stored_log)


async def test_a_one_megabyte_message_arrives_intact(start_delivery, redis: Redis, mail_root: Path) -> None:
    start_delivery()
    lines = b"".join(b"%07d " % i + b"x" * 56 + b"\r\n" for i in range(16_384))  # 64 octets a line: 1 MiB
    body = b"Subject: big\r\n\r\n" + lines
    await send(redis, body, "", ["ann@alpha.test"])

    async def stored() -> bool:
        return bool(files(mail_root, "ann@alpha.test"))

    await wait_until(stored, "the big message stored")
    [name] = files(mail_root, "ann@alpha.test")
    data = read(mail_root, "ann@alpha.test", name)
    assert data == b"Return-Path: <>\nDelivered-To: ann@alpha.test\n" + body.replace(b"\r\n", b"\n")


async def test_deleted_and_disabled_recipients_bounce_to_the_sender(
    start_delivery, site, redis: Redis, mail_root: Path
) -> None:
    site.add_user("gone@alpha.test", "gone-password-1")
    site.add_user("off@alpha.test", "off-password-1")
    local = await send(redis, BODY, "ann@alpha.test", ["gone@alpha.test", "bob@alpha.test"])
    remote = await send(redis, BODY, "carol@beta.test", ["off@alpha.test"])
    site.delete_user("gone@alpha.test")  # since acceptance
    site.patch_user("off@alpha.test", enabled=False)
    start_delivery()

    # ann is local: the DSN goes through LOCAL_DELIVERY into her own Maildir, from the null sender.
    async def dsn_in_anns_mailbox() -> bool:
        return bool(files(mail_root, "ann@alpha.test"))

    await wait_until(dsn_in_anns_mailbox, "DSN in ann's Maildir")
    [name] = files(mail_root, "ann@alpha.test")
    dsn = message_from_bytes(read(mail_root, "ann@alpha.test", name))
    assert dsn["Return-Path"] == "<>"
    assert dsn.get_content_type() == "multipart/report"
    report = dsn.as_string()
    assert "Final-Recipient: rfc822; gone@alpha.test" in report
    assert "Status: 5.1.1" in report
    assert len(files(mail_root, "bob@alpha.test")) == 1
    assert files(mail_root, "gone@alpha.test") == [] and files(mail_root, "off@alpha.test") == []

    # carol is elsewhere: her DSN is queued for the relay.
    async def dsn_outbound() -> bool:
        return bool(await stream_envelopes(redis, OUTBOUND))

    await wait_until(dsn_outbound, "DSN on the outbound stream")
    [notice] = await stream_envelopes(redis, OUTBOUND)
    assert (notice.sender, notice.recipients) == ("", ["carol@beta.test"])
    dsn_body = await RedisBodyStore(redis).get(notice.body_id)
    assert dsn_body is not None and b"Final-Recipient: rfc822; off@alpha.test" in dsn_body
    await wait_until(lambda: body_released(redis, local), "first body released")
    await wait_until(lambda: body_released(redis, remote), "second body released")


def fill_mailbox(mail_root: Path, address: str, octets: int) -> None:
    """Put a message of `octets` into the address's `cur/`, as if delivered and retrieved long ago."""
    maildir = mailbox_path(mail_root, address)
    ensure_maildir(maildir)
    name = maildir_name("Yold", "mx.alpha.test", octets, octets, when=1) + ":2,"
    (maildir / "cur" / name).write_bytes(b"x" * octets)


async def test_over_quota_waits_and_is_delivered_once_the_quota_is_raised(
    start_delivery, site, redis: Redis, mail_root: Path
) -> None:
    site.patch_user("ann@alpha.test", quota_bytes=1000)
    fill_mailbox(mail_root, "ann@alpha.test", 900)  # the message fits the quota, not what is left of it
    start_delivery()
    envelope = await send(
        redis, BODY + b"x" * 200 + b"\r\n", "carol@beta.test", ["ann@alpha.test", "bob@alpha.test"]
    )

    async def deferred() -> bool:
        return bool(await trace_events(redis, "deferred"))

    await wait_until(deferred, "ann deferred")
    [event] = (await trace_events(redis, "deferred"))[:1]
    assert event.detail["recipients"] == ["ann@alpha.test"] and event.detail["statuses"] == ["4.2.2"]
    assert files(mail_root, "ann@alpha.test") == []
    assert len(files(mail_root, "bob@alpha.test")) == 1
    assert await body_exists(redis, envelope)  # still needed for ann
    assert await stream_envelopes(redis, OUTBOUND) == []  # no DSN: the delay warning is hours away

    site.patch_user("ann@alpha.test", quota_bytes=10_000)

    async def ann_stored() -> bool:
        return bool(files(mail_root, "ann@alpha.test"))

    await wait_until(ann_stored, "ann's copy after the quota was raised")
    await wait_until(lambda: body_released(redis, envelope), "body released")
    assert len(files(mail_root, "bob@alpha.test")) == 1  # the retry was for ann only
    assert await redis.zcard(DEFERRED) == 0
    assert await pending(redis) == 0
    assert await stream_envelopes(redis, OUTBOUND) == []


async def test_over_quota_bounces_when_the_lifetime_ends(
    start_delivery, site, redis: Redis, mail_root: Path
) -> None:
    site.patch_user("ann@alpha.test", quota_bytes=1000)
    fill_mailbox(mail_root, "ann@alpha.test", 900)
    start_delivery(YUBIN_DELIVERY_LIFETIME_S="4", YUBIN_DELIVERY_DELAY_WARNING_S="0")
    envelope = await send(redis, BODY, "carol@beta.test", ["ann@alpha.test"])

    async def bounced() -> bool:
        return bool(await stream_envelopes(redis, OUTBOUND))

    await wait_until(bounced, "the bounce after the lifetime")
    assert len(await trace_events(redis, "deferred")) >= 1  # it was retried before giving up
    [notice] = await stream_envelopes(redis, OUTBOUND)
    dsn_body = await RedisBodyStore(redis).get(notice.body_id)
    # The one retry policy (shared.retry_queue): Action failed with the last temporary status, as the relay.
    assert dsn_body is not None and b"Action: failed" in dsn_body and b"Status: 4.2.2" in dsn_body
    assert b"delivery time expired after" in dsn_body
    await wait_until(lambda: body_released(redis, envelope), "body released")
    assert files(mail_root, "ann@alpha.test") == []
    assert await redis.zcard(DEFERRED) == 0
    # Each retry came back on the stream and was deleted once done: the trace tells of them.
    assert {e.queue_id for e in await trace_events(redis, "deferred")} == {envelope.queue_id}
    assert await redis.xlen(LOCAL_DELIVERY) == 0


async def test_auth_service_down_defers_and_delivery_resumes_when_it_is_back(
    start_delivery, site, redis: Redis, mail_root: Path
) -> None:
    start_delivery()
    site.process.stop()
    envelope = await send(redis, BODY, "carol@beta.test", ["ann@alpha.test"])

    async def deferred() -> bool:
        return bool(await trace_events(redis, "deferred"))

    await wait_until(deferred, "ann deferred while the auth service is down")
    assert (await trace_events(redis, "deferred"))[0].detail["statuses"] == ["4.4.3"]
    assert files(mail_root, "ann@alpha.test") == []

    site.process.start(wait_port=("127.0.0.1", int(site.url.rsplit(":", 1)[1])))

    async def stored() -> bool:
        return bool(files(mail_root, "ann@alpha.test"))

    await wait_until(stored, "ann's copy once the auth service is back")
    await wait_until(lambda: body_released(redis, envelope), "body released")
    assert await stream_envelopes(redis, OUTBOUND) == []
