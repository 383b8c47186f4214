"""The maildrop snapshot on a real Maildir: sizes from names, stable UIDLs, deletions only on commit."""

import os
from pathlib import Path

import pytest

from services.pop3.maildrop import Maildrop, MessageDeleted, NoSuchMessage, unique_id, wire_size_of_file
from shared.maildir import maildir_name, to_disk, wire_size

BASE = "1700000000.Y0123456789abcdef0123456789abcdef.mx.alpha.test"


def make_maildir(root: Path) -> Path:
    for sub in ("tmp", "new", "cur"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return root


def put(maildir: Path, message: bytes, unique: str, when: int, sub: str = "new", info: str = "") -> Path:
    stored = to_disk(message)
    path = (
        maildir / sub / (maildir_name(unique, "mx.alpha.test", len(stored), wire_size(stored), when) + info)
    )
    path.write_bytes(stored)
    os.utime(path, (when, when))
    return path


@pytest.mark.parametrize(
    "name",
    [BASE, f"{BASE},S=10,W=12", f"{BASE},S=10,W=12:2,", f"{BASE},S=10,W=12:2,S", f"{BASE}:2,RS"],
)
def test_uidl_is_the_base_name_whatever_the_info_and_sizes(name: str) -> None:
    assert unique_id(name) == BASE


@pytest.mark.parametrize("name", ["1.x." + "h" * 80, "1.x.h\u00e9", "1.x.h\x7f"])
def test_uidl_outside_rfc_1939_rules_is_a_stable_hash(name: str) -> None:
    uid = unique_id(name)
    assert uid == unique_id(name + ",S=1,W=2:2,S")
    assert 1 <= len(uid) <= 70 and all(0x21 <= ord(c) <= 0x7E for c in uid)


def test_wire_size_computed_when_the_name_has_none(tmp_path: Path) -> None:
    (tmp_path / "m").write_bytes(b"a\nb\n")
    (tmp_path / "n").write_bytes(b"a\nb")
    assert wire_size_of_file(tmp_path / "m") == 6
    assert wire_size_of_file(tmp_path / "n") == 6  # the last line gets its CRLF on the wire too


async def test_snapshot_of_new_and_cur_in_delivery_order(tmp_path: Path) -> None:
    maildir = make_maildir(tmp_path / "bob")
    put(maildir, b"S: 2\r\n\r\nsecond\r\n", "Ysecond", 200, sub="cur", info=":2,S")
    put(maildir, b"S: 1\r\n\r\nfirst\r\n", "Yfirst", 100)
    foreign = maildir / "new" / "1700000300.foreign.host"  # no S=/W=: another program's file
    foreign.write_bytes(b"S: 3\n\nthird\n")
    os.utime(foreign, (300, 300))
    (maildir / "new" / ".hidden").write_bytes(b"x")

    drop = await Maildrop.open(maildir)

    assert [m.uid.split(".")[1] for m in drop.messages] == ["Yfirst", "Ysecond", "foreign"]
    # Octets with CRLF line endings, from W= or (the foreign file) counted
    assert [m.size for m in drop.messages] == [15, 16, 15]
    assert drop.stat() == (3, 46)


async def test_missing_maildir_is_an_empty_maildrop(tmp_path: Path) -> None:
    drop = await Maildrop.open(tmp_path / "nobody")
    assert drop.stat() == (0, 0)
    assert await drop.commit() == (0, 0)


async def test_deletions_apply_only_on_commit(tmp_path: Path) -> None:
    maildir = make_maildir(tmp_path / "bob")
    first = put(maildir, b"a\r\n", "Ya", 1)
    second = put(maildir, b"b\r\n", "Yb", 2)
    drop = await Maildrop.open(maildir)

    drop.delete(1)
    assert drop.stat() == (1, 3)
    with pytest.raises(MessageDeleted):
        drop.get(1)
    assert first.exists()

    drop.reset()
    assert drop.stat() == (2, 6)
    drop.delete(2)
    assert await drop.commit() == (1, 0)
    assert first.exists() and not second.exists()


async def test_message_numbers_outside_the_snapshot(tmp_path: Path) -> None:
    maildir = make_maildir(tmp_path / "bob")
    put(maildir, b"a\r\n", "Ya", 1)
    drop = await Maildrop.open(maildir)
    for number in (0, 2, -1):
        with pytest.raises(NoSuchMessage):
            drop.get(number)


async def test_retrieved_messages_move_to_cur_in_update_and_keep_the_uidl(tmp_path: Path) -> None:
    maildir = make_maildir(tmp_path / "bob")
    put(maildir, b"a\r\n", "Ya", 1)
    drop = await Maildrop.open(maildir)
    uid = drop.get(1).uid

    drop.get(1).retrieved = True
    assert len(os.listdir(maildir / "new")) == 1  # nothing moves before UPDATE
    assert await drop.commit() == (0, 0)

    assert os.listdir(maildir / "new") == []
    (moved,) = os.listdir(maildir / "cur")
    assert moved.endswith(":2,")
    again = await Maildrop.open(maildir)
    assert again.get(1).uid == uid and again.get(1).size == 3
    drop.delete(1)
    assert await drop.commit() == (1, 0)  # deleting follows the moved file
    assert os.listdir(maildir / "cur") == []
