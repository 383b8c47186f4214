"""The header fields we read from and add to an accepted message.

- Received (RFC 5321 §4.4), with the RFC 3848 "with" keyword telling whether TLS and AUTH were used.
- Message-ID and Date when a submitted message lacks them (RFC 6409 §8.2, §8.3).
- Received headers counted for loop detection (RFC 5321 §6.3).
"""

import re
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import format_datetime, make_msgid

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


def parse_headers(content: bytes) -> Message:
    return BytesHeaderParser().parsebytes(header_section(content))


def count_received(headers: Message) -> int:
    return len(headers.get_all("Received", []))


def message_id_of(headers: Message) -> str | None:
    value = headers.get("Message-ID")
    if value is None:
        return None
    # Unfold and keep it to one sane line of valid text: it goes into envelopes (JSON) and logs.
    text = " ".join(_CONTROL.sub(" ", str(value)).split())
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
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
        f"Received: from {safe_helo(client.helo)} ([{client.address or 'unknown'}])",
        f"\tby {by_host} (Yubin {role})",
    ]
    if client.tls_version:
        lines.append(f"\t(using {client.tls_version} with cipher {client.tls_cipher or 'unknown'})")
    lines.append(f"\twith {with_keyword(client)} id {queue_id};")
    lines.append(f"\t{when}")
    return ("\r\n".join(lines) + "\r\n").encode("ascii", "replace")


def submission_headers(
    headers: Message, *, hostname: str, now: datetime | None = None
) -> tuple[bytes, str | None]:
    """Date and Message-ID fields a submitted message lacks (RFC 6409 §8), and the new Message-ID if any."""
    added = b""
    new_id = None
    if headers.get("Date") is None:
        added += f"Date: {format_datetime(now or utcnow())}\r\n".encode("ascii")
    if headers.get("Message-ID") is None:
        new_id = make_msgid(domain=hostname)
        added += f"Message-ID: {new_id}\r\n".encode("ascii", "replace")
    return added, new_id
