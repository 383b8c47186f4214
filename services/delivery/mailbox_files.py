"""The filesystem half of a delivery: create the Maildir, look for an earlier copy, write durably.

Durability follows the Maildir protocol plus the fsyncs it leaves implicit: write the file into `tmp/`,
fsync it, rename it into `new/`, fsync `new/`. A crash before the rename leaves only a file in `tmp/`,
which no reader sees; after the fsync of `new/` the message survives a power cut.

All functions here block (disk I/O, fsync); the handler runs them in a worker thread.
"""

import mailbox
import os
from dataclasses import dataclass, field
from pathlib import Path

from shared.maildir import SUBDIRS, fsync_dir, parse_sizes, unique_of


@dataclass(frozen=True)
class MailboxState:
    """What a Maildir holds, as far as one delivery cares."""

    usage: int = 0
    """Bytes in `new/` and `cur/` (the S= sizes): what counts against the quota."""
    stored: str | None = None
    """`new/<name>` or `cur/<name>`: the file this delivery (its unique part) already put there, if any."""
    in_tmp: list[str] = field(default_factory=list)
    """Files in `tmp/` with this delivery's unique part: left by an attempt that crashed."""


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


def _size(entry: os.DirEntry[str]) -> int:
    size, _wire = parse_sizes(entry.name)
    if size is not None:
        return size
    try:  # a file some other tool put there, without S=: ask the filesystem
        return entry.stat().st_size
    except FileNotFoundError:  # deleted by POP3 while we looked
        return 0


def inspect(path: Path, unique: str) -> MailboxState:
    """Quota usage and any earlier copy of the delivery named by `unique`. A missing Maildir is empty."""
    usage = 0
    stored: str | None = None
    # new/ before cur/: POP3 only moves files from new/ to cur/, so a file moved while we look is still
    # seen in one of them.
    for sub in ("new", "cur"):
        try:
            entries = list(os.scandir(path / sub))
        except FileNotFoundError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            usage += _size(entry)
            if unique_of(entry.name) == unique:
                stored = f"{sub}/{entry.name}"
    try:
        in_tmp = sorted(e.name for e in os.scandir(path / "tmp") if unique_of(e.name) == unique)
    except FileNotFoundError:
        in_tmp = []
    return MailboxState(usage=usage, stored=stored, in_tmp=in_tmp)


def write_tmp(path: Path, name: str, data: bytes, *, stale: list[str]) -> None:
    """Write `data` to `tmp/<name>` and fsync it. `stale` are half-written files of a crashed attempt."""
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


def move_to_new(path: Path, name: str) -> None:
    """Rename `tmp/<name>` into `new/` and fsync `new/`: from here on the message is delivered."""
    os.rename(path / "tmp" / name, path / "new" / name)
    fsync_dir(path / "new")
