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


def test_inspect_of_a_missing_maildir_is_empty(tmp_path: Path) -> None:
    state = mailbox_files.inspect(tmp_path / "nobody", "Yabc")
    assert (state.usage, state.stored, state.in_tmp) == (0, None, [])


def test_inspect_sums_sizes_and_finds_an_earlier_copy_in_cur(tmp_path: Path) -> None:
    box = tmp_path / "box"
    mailbox_files.ensure_maildir(box)
    (box / "new" / maildir_name("Yone", "h", 100, 104, when=1)).write_bytes(b"")
    (box / "cur" / (maildir_name("Ytwo", "h", 50, 52, when=2) + ":2,S")).write_bytes(b"")
    (box / "cur" / "3.M1P2.other-tool").write_bytes(b"x" * 7)  # no S=: its real size counts
    (box / "tmp" / maildir_name("Ytwo", "h", 50, 52, when=3)).write_bytes(b"")
    state = mailbox_files.inspect(box, "Ytwo")
    assert state.usage == 157
    assert state.stored == "cur/2.Ytwo.h,S=50,W=52:2,S"
    assert state.in_tmp == ["3.Ytwo.h,S=50,W=52"]
    assert mailbox_files.inspect(box, "Ythree").stored is None


def test_write_then_move_leaves_one_complete_private_file_in_new(tmp_path: Path) -> None:
    box = tmp_path / "box"
    mailbox_files.ensure_maildir(box)
    stale = maildir_name("Yabc", "h", 3, 4, when=1)
    (box / "tmp" / stale).write_bytes(b"hal")  # a crashed attempt's partial file
    name = maildir_name("Yabc", "h", 6, 8, when=2)
    mailbox_files.write_tmp(box, name, b"a\nbc\n\n", stale=[stale])
    assert os.listdir(box / "tmp") == [name]
    mailbox_files.move_to_new(box, name)
    assert os.listdir(box / "tmp") == []
    assert (box / "new" / name).read_bytes() == b"a\nbc\n\n"
    assert ((box / "new" / name).stat().st_mode & 0o777) == 0o600


def test_earlier_copies_finds_only_this_deliverys_unique_part_among_many(tmp_path: Path) -> None:
    box = tmp_path / "box"
    mailbox_files.ensure_maildir(box)
    for n in range(500):
        (box / "new" / maildir_name(f"Y{n:032x}", "h", 10, 11, when=n)).write_bytes(b"x" * 10)
    # The unique part appearing elsewhere in a name (here in the host) is not a copy.
    (box / "cur" / maildir_name("Yother", "a.Ymine.b", 10, 11, when=1)).write_bytes(b"x" * 10)
    assert mailbox_files.earlier_copies(box, "Ymine").stored is None
    mine = maildir_name("Ymine", "h", 10, 11, when=2) + ":2,S"
    (box / "cur" / mine).write_bytes(b"x" * 10)
    state = mailbox_files.earlier_copies(box, "Ymine")
    assert state.stored == f"cur/{mine}" and state.in_tmp == []
    assert mailbox_files.usage(box) == 502 * 10
    assert mailbox_files.usage(tmp_path / "missing") == 0
