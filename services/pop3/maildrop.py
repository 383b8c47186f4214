"""A POP3 maildrop: the snapshot of one Maildir taken at login, with deletions applied only in UPDATE.

RFC 1939 numbers the messages 1..n for the life of a session; messages delivered meanwhile wait for the
next session. Deletion and "retrieved" marks stay in memory until `commit` (the UPDATE state); a dropped
connection never reaches it and changes nothing. Commands in TRANSACTION touch no file but the one RETR or
TOP reads: the directory is listed once, at login.

Sizes and unique ids come from the file names (see `shared.maildir`): `W=` is the size on the wire, so
STAT and LIST open no file; only names without `W=` (files put there by something else) are read once.
"""

import asyncio
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.mailbox_usage import MailboxUsage
from shared.maildir import fsync_dir, mailbox_path, parse_sizes

log = logging.getLogger(__name__)

# RFC 1939 §7 (UIDL): a unique-id is 1 to 70 characters in the range 0x21 to 0x7E.
_UID_MAX = 70
_READ_CHUNK = 64 * 1024


class NoSuchMessage(LookupError):
    """The message number does not exist in this session's snapshot (RFC 1939 §5)."""


class MessageDeleted(LookupError):
    """The message is marked as deleted; RFC 1939 forbids referring to it."""


@dataclass
class MaildropMessage:
    number: int
    path: Path
    uid: str
    size: int
    """Octets as sent on the wire: every LF as CRLF, before byte-stuffing (RFC 1939 §5, LIST)."""
    deleted: bool = False
    retrieved: bool = False
    """RETR sent it: moved from new/ to cur/ in UPDATE unless deleted."""

    @property
    def is_new(self) -> bool:
        return self.path.parent.name == "new"


def base_name(filename: str) -> str:
    """The file name without the Maildir info (`:2,...`) and the `,S=...,W=...` fields."""
    return filename.split(":", 1)[0].split(",", 1)[0]


def unique_id(filename: str) -> str:
    """The UIDL of a file: its base name, which neither delivery nor a move to cur/ ever changes.

    A base name that is too long or has characters RFC 1939 does not allow in a unique-id (a file
    put there by another program) is replaced by a hash of itself, which is just as stable.
    """
    base = base_name(filename)
    # isascii + isprintable is 0x20-0x7E; without the space, the range RFC 1939 allows. (One C call each
    # instead of a generator over the characters: the maildrop of a large mailbox is named at every login.)
    if 0 < len(base) <= _UID_MAX and base.isascii() and base.isprintable() and " " not in base:
        return base
    return "H" + hashlib.sha256(base.encode("utf-8", "surrogateescape")).hexdigest()[:40]


def wire_size_of_file(path: Path) -> int:
    """Octets of the file on the wire, for names without `W=`: every LF becomes CRLF, and a last line
    without a line break gets one (the terminating "." must start a line)."""
    size = 0
    last = b"\n"
    with path.open("rb") as file:
        while chunk := file.read(_READ_CHUNK):
            size += len(chunk) + chunk.count(b"\n")
            last = chunk[-1:]
    return size if last == b"\n" else size + 2


def _disk_size(path: Path) -> int:
    """The size the quota counted for a file: its S= size, or the file's own for names without one."""
    size, _wire = parse_sizes(path.name)
    return size if size is not None else path.stat().st_size


def _scan(directory: Path) -> list[MaildropMessage]:
    found: list[tuple[int, str, Path, int]] = []
    for sub in ("new", "cur"):
        try:
            entries = list(os.scandir(directory / sub))
        except FileNotFoundError:
            continue  # a mailbox nothing was delivered to yet is an empty maildrop
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                continue
            _, wire = parse_sizes(entry.name)
            path = Path(entry.path)
            try:
                mtime = entry.stat(follow_symlinks=False).st_mtime_ns
                size = wire if wire is not None else wire_size_of_file(path)
            except FileNotFoundError:
                continue  # removed while we looked
            found.append((mtime, entry.name, path, size))
    # Oldest first, as delivered; the name breaks ties so the order is the same in every session.
    found.sort(key=lambda item: (item[0], base_name(item[1])))
    return [
        MaildropMessage(number=i, path=path, uid=unique_id(name), size=size)
        for i, (_, name, path, size) in enumerate(found, start=1)
    ]


class Maildrop:
    def __init__(self, directory: Path, messages: list[MaildropMessage]) -> None:
        self.directory = directory
        self.messages = messages
        self.removed_octets = 0
        """Bytes on disk that `commit` removed: what the mailbox's quota usage goes down by."""

    @classmethod
    async def open(cls, directory: Path) -> "Maildrop":
        return cls(directory, await asyncio.to_thread(_scan, directory))

    def open_message(self, message: MaildropMessage) -> BinaryIO:
        """The stored message, for reading (OSError if it is gone). Opening is a quick metadata lookup,
        done on the event loop; reading a large file is for a worker thread."""
        return message.path.open("rb")

    def get(self, number: int) -> MaildropMessage:
        if not 1 <= number <= len(self.messages):
            raise NoSuchMessage(number)
        message = self.messages[number - 1]
        if message.deleted:
            raise MessageDeleted(number)
        return message

    def visible(self) -> list[MaildropMessage]:
        return [m for m in self.messages if not m.deleted]

    def stat(self) -> tuple[int, int]:
        """(count, octets) of the messages not marked deleted (RFC 1939 §5, STAT)."""
        visible = self.visible()
        return len(visible), sum(m.size for m in visible)

    def delete(self, number: int) -> None:
        self.get(number).deleted = True

    def reset(self) -> None:
        for message in self.messages:
            message.deleted = False

    async def commit(self) -> tuple[int, int]:
        """The UPDATE state: remove the messages marked deleted, move the retrieved ones that stay from
        new/ to cur/. Returns (removed, failed). One worker thread for the lot, not one per message."""
        return await asyncio.to_thread(self._apply)

    def _apply(self) -> tuple[int, int]:
        removed = failed = 0
        touched: set[Path] = set()
        for message in self.messages:
            if message.deleted:
                try:
                    octets = _disk_size(message.path)
                    message.path.unlink()
                    self.removed_octets += octets
                    removed += 1
                    touched.add(message.path.parent)
                except FileNotFoundError:
                    removed += 1  # already gone: the outcome the user asked for
                except OSError as exc:
                    failed += 1
                    log.error("could not remove message", extra={"uid": message.uid, "error": str(exc)})
            elif message.retrieved and message.is_new:
                self._mark_seen(message)
        # Make the removals durable before saying +OK: a deleted message must not come back after a crash.
        # One fsync per directory, however many files went.
        for directory in touched:
            try:
                fsync_dir(directory)
            except OSError as exc:
                log.warning("could not fsync maildir", extra={"dir": str(directory), "error": str(exc)})
        return removed, failed

    def _mark_seen(self, message: MaildropMessage) -> None:
        """Move a retrieved message from new/ to cur/ (the Maildir convention; Dovecot sets \\Seen at
        QUIT too). The base name, and with it the UIDL, stays the same; only the `:2,` info is added.
        Failing to move is harmless (the message is simply still "new"), so it is logged, not reported,
        and not fsynced: a move lost in a crash loses nothing but the "seen" mark."""
        target = self.directory / "cur" / f"{message.path.name}:2,"
        try:
            os.rename(message.path, target)
        except OSError as exc:
            log.warning("could not move message to cur/", extra={"uid": message.uid, "error": str(exc)})
            return
        message.path = target


class Maildirs:
    """Opens the maildrop of an address under `mail_root`: what a session is given to read mail with; and
    keeps delivery's quota usage (`shared.mailbox_usage`, in the site's Redis) right when UPDATE removes mail."""

    def __init__(self, mail_root: Path, redis: Redis) -> None:
        self.mail_root = mail_root
        self.usage = MailboxUsage(redis)

    async def open(self, address: str) -> Maildrop:
        """Raises UnsafeAddress (an address that cannot be a directory name) or OSError."""
        return await Maildrop.open(mailbox_path(self.mail_root, address))

    async def release_quota(self, address: str, octets: int) -> None:
        # If Redis is unreachable the usage stays too high until the delivery service next starts and
        # counts afresh: a later deferral, never a lost message.
        try:
            await self.usage.add(address, -octets)
        except RedisError as exc:
            log.warning("could not update mailbox usage", extra={"user": address, "error": str(exc)})
