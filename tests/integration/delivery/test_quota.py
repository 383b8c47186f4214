"""The quota: a message larger than the whole quota bounces at once; one that does not fit what is left
waits (with one "delayed" DSN, as from the relay); the usage is kept in Redis and POP3 deletions lower it."""

import poplib
from collections.abc import Callable
from pathlib import Path

from redis.asyncio import Redis

from services.delivery.mailbox_files import ensure_maildir
from shared.body_store import RedisBodyStore
from shared.mailbox_usage import USAGE
from shared.maildir import mailbox_path, maildir_name, parse_sizes
from shared.streams import OUTBOUND
from tests.fixtures.ports import free_port
from tests.fixtures.processes import ServiceProcess
from tests.fixtures.tls import self_signed_certificate
from tests.integration.delivery.conftest import PASSWORD
from tests.integration.delivery.mailboxes import (
    body_released,
    files,
    send,
    stream_envelopes,
    trace_events,
    wait_until,
)

ANN = "ann@alpha.test"
BODY = b"From: carol@beta.test\r\nSubject: quota\r\n\r\n" + b"x" * 250 + b"\r\n"


def fill_mailbox(mail_root: Path, address: str, octets: int) -> None:
    """A message of `octets` in the address's `cur/`, as if delivered and retrieved long ago."""
    maildir = mailbox_path(mail_root, address)
    ensure_maildir(maildir)
    name = maildir_name("Yold", "mx.alpha.test", octets, octets, when=1) + ":2,"
    (maildir / "cur" / name).write_bytes(b"x" * octets)


async def dsn_bodies(redis: Redis) -> list[bytes]:
    store = RedisBodyStore(redis)
    bodies = [await store.get(e.body_id) for e in await stream_envelopes(redis, OUTBOUND)]
    return [b for b in bodies if b is not None]


async def test_a_message_larger_than_the_whole_quota_bounces_at_once(
    start_delivery, site, redis: Redis, mail_root: Path
) -> None:
    site.patch_user(ANN, quota_bytes=100)  # empty mailbox: deleting mail cannot make room
    start_delivery()
    envelope = await send(redis, BODY, "carol@beta.test", [ANN])

    async def bounced() -> bool:
        return bool(await stream_envelopes(redis, OUTBOUND))

    await wait_until(bounced, "the bounce")
    [dsn] = await dsn_bodies(redis)
    assert b"Action: failed" in dsn and b"Status: 5.2.2" in dsn
    assert b"larger than the mailbox quota" in b" ".join(dsn.split())  # (unfolded)
    assert await trace_events(redis, "deferred") == []  # not retried for days first
    await wait_until(lambda: body_released(redis, envelope), "body released")
    assert files(mail_root, ANN) == []


async def test_a_deferral_sends_one_delayed_dsn_then_the_message_is_stored(
    start_delivery, site, redis: Redis, mail_root: Path
) -> None:
    site.patch_user(ANN, quota_bytes=1000)
    fill_mailbox(mail_root, ANN, 900)  # the message fits the quota, not what is left of it
    start_delivery(YUBIN_DELIVERY_DELAY_WARNING_S="0.5")
    envelope = await send(redis, BODY, "carol@beta.test", [ANN])

    async def warned_then_retried() -> bool:
        # Retries every 0.2 s: well past the warning, and several attempts after it.
        return len(await trace_events(redis, "deferred")) >= 8

    await wait_until(warned_then_retried, "several deferrals")
    [notice] = await trace_events(redis, "delay-notice")
    assert notice.queue_id == envelope.queue_id and notice.detail["statuses"] == ["4.2.2"]
    [dsn] = await dsn_bodies(redis)
    assert b"Action: delayed" in dsn and b"Status: 4.2.2" in dsn

    site.patch_user(ANN, quota_bytes=10_000)
    await wait_until(lambda: body_released(redis, envelope), "stored once the quota was raised")
    assert len(files(mail_root, ANN)) == 1
    assert len(await trace_events(redis, "delay-notice")) == 1
    assert len(await dsn_bodies(redis)) == 1


def start_pop3(
    service_factory: Callable[..., ServiceProcess], delivery_env: dict[str, str], directory: Path
) -> int:
    cert, key = self_signed_certificate(directory)
    port = free_port()
    env = {
        **delivery_env,
        "YUBIN_POP3_HOST": "127.0.0.1",
        "YUBIN_POP3_PORT": str(port),
        "YUBIN_POP3_TLS_CERT": str(cert),
        "YUBIN_POP3_TLS_KEY": str(key),
        "YUBIN_POP3_ALLOW_PLAINTEXT_AUTH": "true",
    }
    service_factory("services.pop3", env, wait_port=("127.0.0.1", port), name="pop3")
    return port


def pop3_delete_all(port: int, address: str) -> None:
    client = poplib.POP3("127.0.0.1", port, timeout=10)
    client.user(address)
    client.pass_(PASSWORD)
    count, _size = client.stat()
    for number in range(1, count + 1):
        client.dele(number)
    client.quit()


async def test_usage_is_kept_in_redis_and_pop3_deletions_make_room(
    start_delivery, service_factory, delivery_env, site, redis: Redis, mail_root: Path, tmp_path: Path
) -> None:
    site.patch_user(ANN, quota_bytes=1000)
    fill_mailbox(mail_root, ANN, 900)
    pop3 = start_pop3(service_factory, delivery_env, tmp_path)
    start_delivery()
    envelope = await send(redis, BODY, "carol@beta.test", [ANN])

    async def deferred() -> bool:
        return bool(await trace_events(redis, "deferred"))

    await wait_until(deferred, "ann deferred: her mailbox is nearly full")
    assert int(await redis.hget(USAGE, ANN)) == 900  # counted once from the Maildir, then kept

    pop3_delete_all(pop3, ANN)  # the user makes room

    await wait_until(lambda: body_released(redis, envelope), "stored once POP3 made room")
    [name] = files(mail_root, ANN)
    size, _wire = parse_sizes(name)
    assert int(await redis.hget(USAGE, ANN)) == size  # 900 - 900 + the new message

    pop3_delete_all(pop3, ANN)

    async def empty() -> bool:
        return int(await redis.hget(USAGE, ANN)) == 0

    await wait_until(empty, "usage back to 0 after POP3 deleted everything")
