"""The header fields we read from and add to an accepted message.

- Received (RFC 5321 §4.4), with the RFC 3848 "with" keyword telling whether TLS and AUTH were used.
- Message-ID and Date when a submitted message lacks them (RFC 6409 §8.2, §8.3).
- Received headers counted for loop detection (RFC 5321 §6.3).
"""

import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, make_msgid

from services.submission.client_address import address_literal
from shared.models import utcnow

# Printable ASCII that cannot fake structure in a Received field (no parentheses, semicolons, quotes).
_HELO_UNSAFE = re.compile(r"[^A-Za-z0-9.\-_:\[\]]")
_MAX_HELO = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ClientInfo:
    """What the Received field says about the SMTP client and the session."""

    helo: str | None
    address: str | None
    extended: bool  # EHLO rather than HELO
    tls_version: str | None
    tls_cipher: str | None
    authenticated: bool


MAX_HEADER_SECTION = 1024 * 1024
"""Only this much of the header section is parsed: enough for any real header (and 51 Received fields),
while a "header" of 25 MiB cannot keep the event loop busy parsing it."""


def header_section(content: bytes) -> bytes:
    """The header section: everything up to the first empty line (RFC 5322 §2.1), at most about 1 MiB."""
    if content.startswith(b"\r\n"):
        return b""
    end = content.find(b"\r\n\r\n", 0, MAX_HEADER_SECTION)
    if end >= 0:
        return content[: end + 2]
    head = content[:MAX_HEADER_SECTION]
    return head[: head.rfind(b"\r\n") + 2] if len(content) > MAX_HEADER_SECTION else head


# A header field's first line: a name of printable characters other than colon, then a colon (RFC 5322
# §2.2; the same test as the stdlib email parser's, so both end the header at the same line).
_FIELD_NAME = re.compile(rb"([\x21-\x39\x3b-\x7e]*):")


@dataclass(frozen=True)
class HeaderFields:
    """The few facts about the header section we act on."""

    received: int
    """How many Received fields (loop detection)."""
    message_id: bytes | None
    """The first Message-ID field's value as written (folding included); None without one."""
    has_date: bool


def parse_headers(content: bytes) -> HeaderFields:
    """Scan the header section for Received, Message-ID and Date.

    A bytes scan of field names rather than the email package: it runs for every message, and parsing
    every field into objects costs more than the rest of the DATA path. Field boundaries are found as the
    email parser finds them: a line starting with white space continues the field before it, and the header
    ends at the first line that is neither (the email parser takes that line as the start of the body).
    """
    received = 0
    message_id: list[bytes] | None = None
    has_date = False
    in_message_id = False
    lines = header_section(content).split(b"\r\n")
    if lines[0].startswith(b"From "):
        lines = lines[1:]  # an mbox "From " line, not a field (the email parser skips it too)
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            if in_message_id:
                message_id.append(line)  # type: ignore[union-attr]
            continue
        in_message_id = False
        field = _FIELD_NAME.match(line)
        if field is None:
            break
        name = field.group(1).lower()
        if name == b"received":
            received += 1
        elif name == b"date":
            has_date = True
        elif name == b"message-id" and message_id is None:
            message_id = [line[field.end() :]]
            in_message_id = True
    return HeaderFields(
        received=received,
        message_id=b"\r\n".join(message_id) if message_id is not None else None,
        has_date=has_date,
    )


def count_received(headers: HeaderFields) -> int:
    return headers.received


def message_id_of(headers: HeaderFields) -> str | None:
    if headers.message_id is None:
        return None
    # Unfold and keep it to one sane line of valid text: it goes into envelopes (JSON) and logs.
    text = headers.message_id.decode("utf-8", "replace")
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text[:998] or None


def safe_helo(helo: str | None) -> str:
    """The client's HELO argument, reduced to characters that cannot forge header structure."""
    if not helo:
        return "unknown"
    return _HELO_UNSAFE.sub("?", helo)[:_MAX_HELO]


def with_keyword(client: ClientInfo) -> str:
    """RFC 3848 §2 (and RFC 5321 §4.4 "SMTP"/"ESMTP")."""
    if not client.extended:
        return "SMTP"
    return "ESMTP" + ("S" if client.tls_version else "") + ("A" if client.authenticated else "")


def received_header(
    client: ClientInfo, *, by_host: str, role: str, queue_id: str, now: datetime | None = None
) -> bytes:
    """One folded Received field, CRLF-terminated."""
    when = format_datetime(now or utcnow())
    lines = [
        f"Received: from {safe_helo(client.helo)} ({address_literal(client.address)})",
        f"\tby {by_host} (Yubin {role})",
    ]
    if client.tls_version:
        lines.append(f"\t(using {client.tls_version} with cipher {client.tls_cipher or 'unknown'})")
    lines.append(f"\twith {with_keyword(client)} id {queue_id};")
    lines.append(f"\t{when}")
    return ("\r\n".join(lines) + "\r\n").encode("ascii", "replace")


def submission_headers(
    headers: HeaderFields, *, hostname: str, now: datetime | None = None
) -> tuple[bytes, str | None]:
    """Date and Message-ID fields a submitted message lacks (RFC 6409 §8), and the new Message-ID if any."""
    added = b""
    new_id = None
    if not headers.has_date:
        added += f"Date: {format_datetime(now or utcnow())}\r\n".encode("ascii")
    if headers.message_id is None:
        new_id = make_msgid(domain=hostname)
        added += f"Message-ID: {new_id}\r\n".encode("ascii", "replace")
    return added, new_id
