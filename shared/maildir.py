"""Where a user's mailbox lives and how its files are named: the contract between delivery and POP3.

Layout: `<mail root>/<domain>/<local part>/`, a Maildir with `tmp/`, `new/` and `cur/`. Delivery writes a
message into `tmp/`, fsyncs it and renames it into `new/`; POP3 reads `new/` and `cur/`.

Line endings: files hold LF line endings (`\\n`), as Postfix and Dovecot write them. SMTP and POP3 speak
CRLF, so delivery converts with `to_disk` and POP3 converts back with `to_wire`; the two are exact inverses
for any message that arrived over SMTP (where every line ends in CRLF).

File names (Dovecot's scheme, so POP3 learns sizes without opening files):

    <unix time>.<unique>.<host>,S=<bytes on disk>,W=<octets on the wire>[:2,<flags>]

- `<unique>` is `Y` plus a hash of the queue id and the recipient (`delivery_unique`): the same delivery
  always gets the same unique part, so a retried delivery recognizes a file an earlier attempt wrote.
- `<host>` is the delivering host with `/`, `:` and `,` escaped as octal (`\\057`, `\\072`, `\\054`), as
  the Maildir specification asks, so the name stays parseable.
- `S=` is the file's size; `W=` is its size with every LF sent as CRLF (`wire_size`), which is what a
  POP3 LIST/STAT reports (RFC 1939 counts the message's octets as transmitted, before byte-stuffing).
- `:2,<flags>` is the Maildir info a reader may add when it moves the file to `cur/`.
"""

import hashlib
import os
import re
import time
from pathlib import Path

SUBDIRS = ("tmp", "new", "cur")

# Canonical addresses are lower-case (the auth service normalizes them). Anything that is not a plain
# dot-atom local part could name another directory ("..", "/"): refuse rather than escape.
_LOCAL_PART = re.compile(r"^[a-z0-9!#$%&'*+=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+=?^_`{|}~-]+)*$")
_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$")

# Characters that would break the name apart: the path separator, the info separator, the field separator.
_HOST_ESCAPES = {"/": r"\057", ":": r"\072", ",": r"\054"}
_SIZE_FIELD = re.compile(r"^([SW])=(\d+)$")


class UnsafeAddress(ValueError):
    """The address cannot be mapped to a directory safely."""


def mailbox_path(mail_root: Path, address: str) -> Path:
    local, sep, domain = address.rpartition("@")
    if not sep or not _LOCAL_PART.match(local) or not _DOMAIN.match(domain) or len(address) > 254:
        raise UnsafeAddress(f"not a canonical mailbox address: {address!r}")
    return mail_root / domain / local


def delivery_unique(queue_id: str, recipient: str) -> str:
    """The unique part of the file name for one message delivered to one recipient (stable across retries)."""
    digest = hashlib.sha256(f"{queue_id}\n{recipient}".encode()).hexdigest()
    return f"Y{digest[:32]}"


def maildir_name(unique: str, host: str, size: int, wire: int, when: float | None = None) -> str:
    """The base name (no `:2,` info) of a new message file; see the module docstring for the scheme."""
    for char, escaped in _HOST_ESCAPES.items():
        host = host.replace(char, escaped)
    stamp = int(time.time() if when is None else when)
    return f"{stamp}.{unique}.{host},S={size},W={wire}"


def unique_of(name: str) -> str:
    """The unique part of a file name (the field between the first and the second dot)."""
    parts = name.split(".", 2)
    return parts[1] if len(parts) == 3 else ""


def parse_sizes(name: str) -> tuple[int | None, int | None]:
    """`(S, W)` from a file name: the size on disk and on the wire; None where the name does not say."""
    base = name.split(":", 1)[0]
    sizes: dict[str, int] = {}
    for field in base.split(",")[1:]:
        match = _SIZE_FIELD.match(field)
        if match:
            sizes[match.group(1)] = int(match.group(2))
    return sizes.get("S"), sizes.get("W")


def to_disk(message: bytes) -> bytes:
    """SMTP's CRLF line endings as LF, ending in a line break (Maildir files are LF text)."""
    stored = message.replace(b"\r\n", b"\n")
    if stored and not stored.endswith(b"\n"):
        stored += b"\n"
    return stored


def to_wire(stored: bytes) -> bytes:
    """A stored message as POP3 sends it (before byte-stuffing): every LF as CRLF."""
    return stored.replace(b"\n", b"\r\n")


def wire_size(stored: bytes) -> int:
    """`len(to_wire(stored))` without building the copy."""
    return len(stored) + stored.count(b"\n")


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a rename, a new file or subdirectory) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
