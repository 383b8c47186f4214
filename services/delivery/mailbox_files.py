"""The filesystem half of a delivery: create the Maildir, look for an earlier copy, write durably.

Durability follows the Maildir protocol plus the fsyncs it leaves implicit: write the file into `tmp/`,
fsync it, rename it into `new/`, fsync `new/`. A crash before the rename leaves only a file in `tmp/`,
which no reader sees; after the fsync of `new/` the message survives a power cut.

All functions here block (disk I/O, fsync); the handler runs them in a worker thread.
"""

import mailbox
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from shared.maildir import SUBDIRS, fsync_dir, parse_sizes, unique_of


@dataclass(frozen=True)
class EarlierCopies:
    """What an earlier attempt at one delivery left in the Maildir."""

    stored: str | None = None
    """`new/<name>` or `cur/<name>:2,`: the delivery's file, already where readers see it."""
    in_tmp: list[str] = field(default_factory=list)
    """Files in `tmp/` with this delivery's unique part: left by an attempt that crashed before its rename."""


def ensure_maildir(path: Path) -> None:
    """Create `path` as a Maildir (and its domain directory) if missing, and make the new entries durable."""
    if all((path / sub).is_dir() for sub in SUBDIRS):
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        mailbox.Maildir(path, create=True)
    except FileExistsError:
        pass  # another replica created it at the same moment
    # mailbox.Maildir skips the subdirectories if the directory already exists (e.g. a crash between the
    # mkdirs): complete them.
    for sub in SUBDIRS:
        (path / sub).mkdir(mode=0o700, exist_ok=True)
    for directory in (path, path.parent, path.parent.parent):
        fsync_dir(directory)


def _names(directory: Path) -> list[str]:
    try:
        return os.listdir(directory)
    except FileNotFoundError:
        return []


def _with_unique(names: list[str], unique: str) -> list[str]:
    """The names whose unique part is `unique`. A mailbox holds thousands of files and this runs for every
    delivery: one substring search over all names (in C) rules most mailboxes out before any per-name work."""
    needle = f".{unique}."
    if needle not in "\n".join(names):
        return []
    return sorted(n for n in names if needle in n and unique_of(n) == unique)


def _size(directory: Path, name: str) -> int:
    size, _wire = parse_sizes(name)
    if size is not None:
        return size
    try:  # a file some other tool put there, without S=: ask the filesystem
        return (directory / name).stat().st_size
    except FileNotFoundError:  # deleted by POP3 while we looked
        return 0


def count_usage(path: Path) -> int:
    """Bytes in `new/` and `cur/` (the S= sizes), counted from a listing: what counts against the quota.
    A missing Maildir is empty. This grows with the mailbox: it runs only when Redis does not know the
    usage yet (see `shared.mailbox_usage`), not for every delivery."""
    total = 0
    for sub in ("new", "cur"):
        directory = path / sub
        total += sum(_size(directory, name) for name in _names(directory) if not name.startswith("."))
    return total


def earlier_copies(path: Path, name: str) -> EarlierCopies:
    """Any copy of the delivery whose file is `name` (the same on every attempt: see `delivery_file_name`).

    `new/` and `cur/` are not listed: two `stat`s answer, whatever the mailbox holds. `cur/<name>:2,` is
    where POP3 moves a retrieved file (the only reader). Only `tmp/` is listed, which holds nothing but
    deliveries under way or interrupted, however large the mailbox."""
    stored: str | None = None
    # new/ before cur/: POP3 only moves files from new/ to cur/, so a file moved while we look is still
    # seen in one of them.
    for candidate in (f"new/{name}", f"cur/{name}:2,"):
        if os.path.lexists(path / candidate):
            stored = candidate
            break
    return EarlierCopies(stored=stored, in_tmp=_with_unique(_names(path / "tmp"), unique_of(name)))


def tmp_name(name: str) -> str:
    """The name in `tmp/` of one attempt at writing `name`. Each attempt has its own, so two attempts at one
    delivery that overlap (a slow one whose entry was reclaimed) never rename each other's half-written file:
    the loser's rename fails and it defers, which the redelivery then recognizes as done."""
    return f"{name}.{secrets.token_hex(6)}"


def write_tmp(path: Path, name: str, data: bytes, *, stale: list[str]) -> None:
    """Write `data` to `tmp/<name>` and fsync it, creating the Maildir first if needed (one trip to the
    worker thread for both). `stale` are files an interrupted attempt left in `tmp/`."""
    ensure_maildir(path)
    tmp = path / "tmp"
    for old in stale:
        (tmp / old).unlink(missing_ok=True)
    fd = os.open(tmp / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)


def look_and_write(path: Path, name: str, tmp: str, data: bytes, *, marked: bool) -> EarlierCopies:
    """`earlier_copies`, then `write_tmp` unless the delivery needs no new file: one trip to the worker
    thread for both. No new file when it is stored already, or when it is `marked` (complete) with nothing
    left in `tmp/` (the user has since removed it). Returns what `earlier_copies` found."""
    state = earlier_copies(path, name)
    if state.stored is None and (not marked or state.in_tmp):
        write_tmp(path, tmp, data, stale=state.in_tmp)
    return state


def move_to_new(path: Path, tmp: str, name: str) -> None:
    """Rename `tmp/<tmp>` to `new/<name>` and fsync `new/`: from here on the message is delivered."""
    os.rename(path / "tmp" / tmp, path / "new" / name)
    fsync_dir(path / "new")
