"""The durable write sequence itself, which a kill -9 test cannot see.

A killed process leaves the page cache behind, so a missing fsync never shows there; only a power cut
would lose the data. These tests run the real handler (real Redis, real auth service, real files) with
the system calls and Redis commands recorded in order (`recording.Recorder`) and check:

    file written → file fsynced → marker set → renamed into new/ → new/ fsynced → acknowledged (EXEC)

and, with the run stopped deterministically right after each of those steps (or a write failing), that the
entry is not lost and the next attempt stores exactly one copy.
"""

import os
from pathlib import Path

import pytest
from redis.asyncio import Redis

from services.delivery.handler import MARKER, Deliverer
from services.delivery.stored_message import stored_message
from shared.auth_client import AuthClient
from shared.bus import Consumer, Entry
from shared.maildir import mailbox_path
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
from tests.integration.delivery.recording import Crash, Event, Recorder, acknowledges
from tests.integration.delivery.test_redelivery import settings_for

ANN = "ann@alpha.test"
BODY = b"From: carol@beta.test\r\nSubject: durable\r\n\r\n" + b"line of text\r\n" * 2000


async def one_attempt(site, redis: Redis, mail_root: Path, recorder: Recorder) -> tuple[Envelope, Entry]:
    """Queue a message for ann and run one attempt of the real handler on it, under `recorder`."""
    # A retry is due at once, for the service started next to pick up.
    settings = settings_for(site, mail_root).model_copy(update={"delivery_retry_delays_s": [0.2]})
    consumer = Consumer(redis, LOCAL_DELIVERY, DELIVERY_GROUP, settings, name="first")
    await consumer.ensure_group()
    envelope = await send(redis, BODY, "carol@beta.test", [ANN])
    [entry] = await consumer.read_new(1, block_ms=100)
    async with AuthClient(settings) as auth:
        deliverer = Deliverer(settings, redis, auth, consumer)
        await auth.recipient(ANN)  # the user look-up is not what is watched
        recorder.events.clear()
        try:
            await deliverer.handle(entry)
        except Crash:
            pass
    return envelope, entry


def in_dir(directory: Path):
    return lambda path: os.path.dirname(path) == str(directory)


async def test_file_fsync_marker_rename_directory_fsync_then_ack(
    site, redis: Redis, mail_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    maildir = mailbox_path(mail_root, ANN)
    recorder = Recorder()
    recorder.install(monkeypatch)
    envelope, _entry = await one_attempt(site, redis, mail_root, recorder)
    monkeypatch.undo()

    [name] = files(mail_root, ANN)
    data = read(mail_root, ANN, name)
    assert data == stored_message(BODY, "carol@beta.test", ANN)
    tmp_dir, new_dir = maildir / "tmp", maildir / "new"
    is_tmp = in_dir(tmp_dir)
    renamed = recorder.index(
        "rename into new/", lambda e: e.kind == "rename" and e.path == str(new_dir / name)
    )
    tmp_file = recorder.events[renamed].source
    assert is_tmp(tmp_file)

    writes = [e for e in recorder.events if e.kind == "write" and e.path == tmp_file]
    assert sum(e.size for e in writes) == len(data)  # the whole file went through write()
    last_write = recorder.last_index("write", lambda e: e.kind == "write" and e.path == tmp_file)
    file_synced = recorder.index("fsync of the file", lambda e: e.kind == "fsync" and e.path == tmp_file)
    marker = MARKER.format(envelope.queue_id, ANN)
    marked = recorder.index("the marker", lambda e: e.kind in ("command", "exec") and e.key == marker)
    dir_synced = recorder.last_index("fsync of new/", lambda e: e.kind == "fsync" and e.path == str(new_dir))
    acked = recorder.index("the acknowledgement", acknowledges)

    assert last_write < file_synced < marked < renamed < dir_synced < acked, "\n".join(
        map(str, recorder.events)
    )
    assert recorder.events[acked].kind == "exec"  # in the one MULTI that finishes the entry
    assert await pending(redis) == 0


def after_write_fsync(mail_root: Path):
    tmp_dir = mailbox_path(mail_root, ANN) / "tmp"
    return lambda e: e.kind == "fsync" and os.path.dirname(e.path) == str(tmp_dir)


def after_marker(e: Event) -> bool:
    return e.kind in ("command", "exec") and e.key.startswith("yubin:delivered:")


def after_rename(e: Event) -> bool:
    return e.kind == "rename"


def after_directory_fsync(mail_root: Path):
    new_dir = mailbox_path(mail_root, ANN) / "new"
    return lambda e: e.kind == "fsync" and e.path == str(new_dir)


CRASHES = [
    "after the file's fsync",
    "after the marker",
    "after the rename",
    "after new/'s fsync",
    "before EXEC",
]


@pytest.mark.parametrize("crash", CRASHES)
async def test_a_stop_at_any_step_keeps_the_entry_pending_and_the_next_attempt_stores_one_copy(
    crash: str, site, start_delivery, redis: Redis, mail_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder()
    if crash == "before EXEC":
        recorder.crash_before_exec = lambda names: "XACK" in names
    else:
        recorder.crash_after = {
            "after the file's fsync": after_write_fsync(mail_root),
            "after the marker": after_marker,
            "after the rename": after_rename,
            "after new/'s fsync": after_directory_fsync(mail_root),
        }[crash]
    recorder.install(monkeypatch)
    envelope, _entry = await one_attempt(site, redis, mail_root, recorder)
    monkeypatch.undo()
    assert recorder.crash_after is None and recorder.crash_before_exec is None, (
        "the crash point was not reached"
    )

    # The attempt died before its EXEC: nothing acknowledged, the body still held.
    assert await pending(redis) == 1
    assert not await body_released(redis, envelope)
    assert not any(acknowledges(e) for e in recorder.events)

    start_delivery()  # a replica reclaims the entry after YUBIN_BUS_CLAIM_IDLE_MS
    await wait_until(lambda: body_released(redis, envelope), "the entry finished by the next attempt")
    assert await pending(redis) == 0
    [name] = files(mail_root, ANN)
    assert read(mail_root, ANN, name) == stored_message(BODY, "carol@beta.test", ANN)
    assert files(mail_root, ANN, "tmp") == []
    [stored] = await trace_events(redis, "stored")
    assert stored.queue_id == envelope.queue_id


async def test_a_failing_write_stores_nothing_and_a_later_attempt_stores_one_copy(
    site, start_delivery, redis: Redis, mail_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp_dir = mailbox_path(mail_root, ANN) / "tmp"
    recorder = Recorder(fail_write=lambda path: os.path.dirname(path) == str(tmp_dir))
    recorder.install(monkeypatch)
    envelope, _entry = await one_attempt(site, redis, mail_root, recorder)
    monkeypatch.undo()

    # Not stored, not marked: the recipient is deferred (the disk error is the operator's to fix), and
    # the body is kept for the retry.
    assert files(mail_root, ANN) == []
    assert not await redis.exists(MARKER.format(envelope.queue_id, ANN))
    [deferred] = await trace_events(redis, "deferred")
    assert deferred.detail["statuses"] == ["4.3.0"]
    assert not await body_released(redis, envelope)
    renames = [e for e in recorder.events if e.kind == "rename"]
    assert renames == []

    start_delivery()  # its scheduler brings the retry back (YUBIN_DELIVERY_RETRY_DELAYS_S=[0.2])
    await wait_until(lambda: body_released(redis, envelope), "the retry finished")
    [name] = files(mail_root, ANN)
    assert read(mail_root, ANN, name) == stored_message(BODY, "carol@beta.test", ANN)
    assert files(mail_root, ANN, "tmp") == []
    assert len(await trace_events(redis, "stored")) == 1
