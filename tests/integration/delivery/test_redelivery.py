"""Redelivery never stores a second copy: after a crash anywhere, after a handler runs twice, after kill -9.

The first attempt's crash is reproduced by doing exactly what it would have done up to the crash (with the
same functions the service uses) while its stream entry sits pending under a consumer that never comes
back; the real service then reclaims the entry.
"""

from pathlib import Path

from redis.asyncio import Redis

from services.delivery import mailbox_files
from services.delivery.handler import MARKER, Deliverer, delivery_file_name
from services.delivery.stored_message import stored_message
from shared.auth_client import AuthClient
from shared.bus import Consumer
from shared.config import BusSettings
from shared.config.delivery import DeliverySettings
from shared.maildir import delivery_unique, mailbox_path, unique_of
from shared.models import Envelope
from shared.streams import DELIVERY_GROUP, LOCAL_DELIVERY
from tests.integration.delivery.mailboxes import (
    body_released,
    files,
    pending,
    read,
    send,
    trace_events,
    wait_until,
)

BODY = b"From: carol@beta.test\r\nSubject: once\r\n\r\nonly once\r\n"


def settings_for(site, mail_root: Path) -> DeliverySettings:
    return DeliverySettings(
        redis_url=site.redis_url,
        auth_url=site.url,
        service_token=site.service_token,
        mail_root=mail_root,
        hostname="mx.alpha.test",
        bus_claim_idle_ms=300,
    )


async def test_the_handler_run_twice_on_one_entry_stores_one_copy(
    site, redis: Redis, mail_root: Path
) -> None:
    settings = settings_for(site, mail_root)
    consumer = Consumer(redis, LOCAL_DELIVERY, DELIVERY_GROUP, settings, name="twice")
    await consumer.ensure_group()
    envelope = await send(redis, BODY, "carol@beta.test", ["ann@alpha.test", "bob@alpha.test"])
    [entry] = await consumer.read_new(10, block_ms=100)
    async with AuthClient(settings) as auth:
        deliverer = Deliverer(settings, redis, auth, consumer)
        # An attempt that stored both copies and died before its MULTI (no trace, no ack) ...
        for recipient in envelope.recipients:
            await deliverer.deliver_one(envelope, BODY, recipient)
        # ... then the redelivery, twice over.
        await deliverer.handle(entry)
        await deliverer.handle(entry)
    for address in ("ann@alpha.test", "bob@alpha.test"):
        assert len(files(mail_root, address)) == 1
    stored = await trace_events(redis, "stored")
    assert sorted(e.detail["recipient"] for e in stored) == ["ann@alpha.test", "bob@alpha.test"]
    assert all(e.detail["recovered"] for e in stored)
    assert await body_released(redis, envelope)
    assert await pending(redis) == 0


async def first_attempt_until(crash: str, redis: Redis, mail_root: Path, envelope: Envelope) -> None:
    """Do what the service's first attempt does for ann (same functions, same order), up to `crash`."""
    recipient = "ann@alpha.test"
    maildir = mailbox_path(mail_root, recipient)
    data = stored_message(BODY, envelope.sender, recipient)
    name = delivery_file_name(envelope, recipient, "mx.alpha.test", data)
    tmp = mailbox_files.tmp_name(name)
    mailbox_files.ensure_maildir(maildir)
    if crash == "mid-write":  # half a file in tmp/, no marker yet
        (maildir / "tmp" / tmp).write_bytes(data[:10])
        return
    mailbox_files.write_tmp(maildir, tmp, data, stale=[])
    if crash != "marker-lost":  # marker-lost: Redis lost it (e.g. restored from an older backup)
        await redis.set(MARKER.format(envelope.queue_id, recipient), b"1")
    if crash == "before-rename":
        return
    mailbox_files.move_to_new(maildir, tmp, name)
    if crash == "after-rename-then-pop3-deleted":
        (maildir / "new" / name).unlink()


CRASHES = ["mid-write", "before-rename", "after-rename", "after-rename-then-pop3-deleted", "marker-lost"]


async def test_reclaimed_entries_are_finished_without_a_second_copy(
    start_delivery, redis: Redis, mail_root: Path
) -> None:
    consumer = Consumer(redis, LOCAL_DELIVERY, DELIVERY_GROUP, BusSettings(), name="crashed")
    await consumer.ensure_group()
    crashed: dict[str, Envelope] = {}
    for crash in CRASHES:  # one message per crash point, all to ann
        crashed[crash] = await send(redis, BODY, "carol@beta.test", ["ann@alpha.test"])
        await first_attempt_until(crash, redis, mail_root, crashed[crash])
    # The entries are now pending under a consumer that never comes back.
    assert len(await consumer.read_new(10, block_ms=100)) == len(CRASHES)

    start_delivery()

    async def all_finished() -> bool:
        return all([await body_released(redis, e) for e in crashed.values()])

    await wait_until(all_finished, "the reclaimed entries finished")
    assert await pending(redis) == 0
    assert files(mail_root, "ann@alpha.test", "tmp") == []
    names = files(mail_root, "ann@alpha.test")
    for crash, envelope in crashed.items():
        mine = [n for n in names if unique_of(n) == delivery_unique(envelope.queue_id, "ann@alpha.test")]
        if crash == "after-rename-then-pop3-deleted":
            # The user already fetched and deleted it: storing it again would be a duplicate.
            assert mine == [], crash
        else:
            assert len(mine) == 1, crash
            assert read(mail_root, "ann@alpha.test", mine[0]) == stored_message(
                BODY, "carol@beta.test", "ann@alpha.test"
            ), crash
    assert len(names) == len(CRASHES) - 1


async def test_kill_9_during_a_batch_loses_and_doubles_nothing(
    start_delivery, redis: Redis, mail_root: Path
) -> None:
    first = [
        await send(redis, BODY, "carol@beta.test", ["ann@alpha.test", "bob@alpha.test"]) for _ in range(100)
    ]
    victim = start_delivery(YUBIN_CONCURRENCY="4")
    start_delivery(YUBIN_CONCURRENCY="4")  # a second replica of the same consumer group

    async def some_stored() -> bool:
        return len(files(mail_root, "ann@alpha.test")) >= 10

    await wait_until(some_stored, "the batch under way")
    victim.kill()
    second = [
        await send(redis, BODY, "carol@beta.test", ["ann@alpha.test", "bob@alpha.test"]) for _ in range(50)
    ]

    async def all_released() -> bool:
        return all([await body_released(redis, e) for e in first + second])

    await wait_until(all_released, "every envelope finished", timeout=30)
    for address in ("ann@alpha.test", "bob@alpha.test"):
        names = files(mail_root, address)
        expected = {delivery_unique(e.queue_id, address) for e in first + second}
        assert len(names) == 150
        assert {n.split(".")[1] for n in names} == expected
    assert await pending(redis) == 0
