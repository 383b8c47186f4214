"""What a message needs from the receiving server: SMTPUTF8 (RFC 6531) and 8BITMIME (RFC 6152).

The relay never downgrades silently. It checks, before MAIL FROM, what the server offers against what the
envelope and the message need, and fails what cannot be sent as it is (`smtp_session`):

- an address whose *local part* is not ASCII needs SMTPUTF8; a non-ASCII *domain* does not, it is sent as
  its A-label (IDNA, `xn--...`), which names the same domain;
- a header section with raw UTF-8 (RFC 6532) needs SMTPUTF8: there is no faithful downgrade (RFC 6857
  rewrites headers, and we do not);
- a body with 8-bit octets needs 8BITMIME (a server offering SMTPUTF8 takes 8-bit too, RFC 6531 §3.1).
"""

import re
from dataclasses import dataclass

import idna

_END_OF_HEADER = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True)
class MessageNeeds:
    utf8_headers: bool
    """The header section has non-ASCII octets: only an SMTPUTF8 server may take it."""
    eight_bit: bool
    """Some octet anywhere in the message is above 127: BODY=8BITMIME (or SMTPUTF8) is needed."""


def message_needs(message: bytes) -> MessageNeeds:
    match = _END_OF_HEADER.search(message)
    header = message[: match.start()] if match else message
    return MessageNeeds(utf8_headers=not header.isascii(), eight_bit=not message.isascii())


def ascii_address(address: str) -> str | None:
    """The address as a server without SMTPUTF8 can take it (domain as A-label), None if there is none.

    A non-ASCII local part has no ASCII form: only its own server knows what it means (RFC 6531 §3.3).
    """
    if address.isascii():
        return address
    local, at, domain = address.rpartition("@")
    if not at or not local.isascii():
        return None
    try:
        return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"
    except idna.IDNAError:
        return None
