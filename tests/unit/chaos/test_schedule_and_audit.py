"""The chaos run's parts that need no lab: the seeded schedule and the Maildir audit (real files)."""

import re
from pathlib import Path

from chaos.faults import KILLED_ROLES, PAUSED, schedule
from chaos.senders import plan
from chaos.verify import read_mailboxes

OURS = re.compile(rb"chaos\.t1\.\d+@(?:alpha|beta)\.test")


def test_the_schedule_is_a_function_of_the_seed_and_has_every_kind_of_fault() -> None:
    first = schedule(42, 20, gap_s=(1, 3), pause_s=(3, 8))
    assert first == schedule(42, 20, gap_s=(1, 3), pause_s=(3, 8))
    assert first != schedule(43, 20, gap_s=(1, 3), pause_s=(3, 8))
    one_round = first[: len(KILLED_ROLES) + len(PAUSED)]
    killed = {
        f.process if f.process == "dns" else f.process.split("-", 1)[1]
        for f in one_round
        if f.action == "kill"
    }
    assert killed == set(KILLED_ROLES)
    assert {f.process for f in one_round if f.action == "pause"} == set(PAUSED)
    assert all(3 <= f.duration_s <= 8 for f in first if f.action == "pause")


def test_the_plan_mixes_local_and_remote_recipients_and_some_bounces() -> None:
    users = ["alice@alpha.test", "anna@alpha.test", "bob@beta.test", "bea@beta.test"]
    planned = [m for ms in plan(7, 400, users, 0.05, "t1").values() for m in ms]
    assert len({m.message_id for m in planned}) == 400
    domains = {(m.sender.split("@")[1], r.split("@")[1]) for m in planned for r in m.recipients}
    assert ("alpha.test", "alpha.test") in domains and ("alpha.test", "beta.test") in domains
    bounced = [m for m in planned if m.bounces]
    assert bounced and all(b.split("@")[1] != m.sender.split("@")[1] for m in bounced for b in m.bounces)


def deliver(root: Path, address: str, name: str, data: bytes) -> None:
    local, domain = address.split("@")
    folder = root / domain / local / "new"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def test_the_audit_counts_copies_dsns_and_foreign_files(tmp_path: Path) -> None:
    one = b"From: a@alpha.test\r\nMessage-ID: <chaos.t1.1@alpha.test>\r\n\r\nbody\r\n"
    deliver(tmp_path, "bob@beta.test", "1", one)
    deliver(tmp_path, "bob@beta.test", "2", one)
    deliver(tmp_path, "bea@beta.test", "3", one.replace(b"Message-ID", b"message-id"))
    dsn = (
        b"From: MAILER-DAEMON@alpha.test\r\nMessage-ID: <dsn.9@alpha.test>\r\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\n"
        b"Content-Type: text/rfc822-headers\r\n\r\nMessage-ID: <chaos.t1.2@alpha.test>\r\n--x--\r\n"
    )
    deliver(tmp_path, "alice@alpha.test", "4", dsn)
    deliver(tmp_path, "alice@alpha.test", "5", b"Message-ID: <other@x>\r\n\r\nhi\r\n")
    boxes = read_mailboxes([tmp_path], OURS)
    assert boxes.copies == {
        ("bob@beta.test", "chaos.t1.1@alpha.test"): 2,
        ("bea@beta.test", "chaos.t1.1@alpha.test"): 1,
    }
    assert boxes.dsns == {("alice@alpha.test", "chaos.t1.2@alpha.test"): 1}
    assert [Path(p).name for p in boxes.foreign] == ["5"]
