"""The filesystem half of a delivery, on a real directory."""

import os
from pathlib import Path

from services.delivery import mailbox_files
from shared.maildir import maildir_name


def test_ensure_maildir_creates_the_three_directories_private(tmp_path: Path) -> None:
    box = tmp_path / "alpha.test" / "ann"
    mailbox_files.ensure_maildir(box)
    for sub in ("tmp", "new", "cur"):
        assert (box / sub).is_dir()
    assert (box.stat().st_mode & 0o777) == 0o700
    mailbox_files.ensure_maildir(box)  # a second time is a no-op


def test_ensure_maildir_completes_a_half_created_one(tmp_path: Path) -> None:
    box = tmp_path / "alpha.test" / "ann"
    (box / "tmp").mkdir(parents=True)
    mailbox_files.ensure_maildir(box)
    assert (box / "new").is_dir() and (box / "cur").is_dir()


def test_a_missing_maildir_is_empty_and_holds_no_copy(tmp_path: Path) -> None:
    state = mailbox_files.earlier_copies(tmp_path / "nobody", maildir_name("Yabc", "h", 1, 1, when=1))
    assert (state.stored, state.in_tmp) == (None, [])
    assert mailbox_files.count_usage(tmp_path / "nobody") == 0


def test_count_usage_sums_sizes_and_earlier_copies_finds_a_retrieved_copy(tmp_path: Path) -> None:
    box = tmp_path / "box"
    mailbox_files.ensure_maildir(box)
    (box / "new" / maildir_name("Yone", "h", 100, 104, when=1)).write_bytes(b"")
    two = maildir_name("Ytwo", "h", 50, 52, when=2)
    (box / "cur" / (two + ":2,")).write_bytes(b"")  # where POP3 puts a retrieved message
    (box / "cur" / "3.M1P2.other-tool").write_bytes(b"x" * 7)  # no S=: its real size counts
    (box / "tmp" / mailbox_files.tmp_name(two)).write_bytes(b"")
    assert mailbox_files.count_usage(box) == 157
    state = mailbox_files.earlier_copies(box, two)
    assert state.stored == f"cur/{two}:2,"
    assert len(state.in_tmp) == 1 and state.in_tmp[0].startswith(two)
    assert mailbox_files.earlier_copies(box, maildir_name("Ythree", "h", 50, 52, when=2)).stored is None


def test_write_then_move_leaves_one_complete_private_file_in_new(tmp_path: Path) -> None:
    box = tmp_path / "box"
    mailbox_files.ensure_maildir(box)
    stale = maildir_name("Yabc", "h", 3, 4, when=1)
    (box / "tmp" / stale).write_bytes(b"hal")  # a crashed attempt's partial file
    name = maildir_name("Yabc", "h", 6, 8, when=2)
    tmp = mailbox_files.tmp_name(name)
    mailbox_files.write_tmp(box, tmp, b"a\nbc\n\n", stale=[stale])
    assert os.listdir(box / "tmp") == [tmp]
    mailbox_files.move_to_new(box, tmp, name)
    assert os.listdir(box / "tmp") == []
    assert (box / "new" / name).read_bytes() == b"a\nbc\n\n"
    assert ((box / "new" / name).stat().st_mode & 0o777) == 0o600


def test_earlier_copies_looks_for_this_deliverys_name_only(tmp_path: Path) -> None:
    box = tmp_path / "box"
    mailbox_files.ensure_maildir(box)
    for n in range(500):
        (box / "new" / maildir_name(f"Y{n:032x}", "h", 10, 11, when=n)).write_bytes(b"x" * 10)
    mine = maildir_name("Ymine", "h", 10, 11, when=2)
    # Another delivery's leftover in tmp/ is not ours.
    (box / "tmp" / mailbox_files.tmp_name(maildir_name("Yother", "h", 10, 11, when=2))).write_bytes(b"")
    assert mailbox_files.earlier_copies(box, mine) == mailbox_files.EarlierCopies()
    (box / "new" / mine).write_bytes(b"x" * 10)
    assert mailbox_files.earlier_copies(box, mine).stored == f"new/{mine}"
    assert mailbox_files.count_usage(box) == 501 * 10
