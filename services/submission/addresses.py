"""Mailbox addresses as they arrive in MAIL FROM and RCPT TO (already parsed by aiosmtpd).

aiosmtpd drops a source route (`<@relay:user@domain>` → `user@domain`, RFC 5321 §4.1.1.3 says to ignore
it) and keeps quoted local parts as written (`"user@other"@domain`).
"""

from dataclasses import dataclass

NULL_PATH = "<>"
"""How aiosmtpd hands us the null reverse-path of `MAIL FROM:<>`."""

# Characters that old mailers treat as "route the rest elsewhere" when they appear in a local part
# (user%other@us, other!user@us, "user@other"@us). Postfix calls it sender-specified routing.
_ROUTING = ("@", "%", "!")
_MAX_LOCAL = 64  # RFC 5321 §4.5.3.1.1
_MAX_DOMAIN = 255  # RFC 5321 §4.5.3.1.2


@dataclass(frozen=True)
class Mailbox:
    local: str
    domain: str  # lower-case, no trailing dot

    @property
    def address(self) -> str:
        return f"{self.local}@{self.domain}"

    @property
    def has_routing(self) -> bool:
        return self.local.startswith('"') or any(c in self.local for c in _ROUTING)


def is_clean(text: str) -> bool:
    """No control characters, no undecodable bytes (surrogates from aiosmtpd's surrogateescape)."""
    return all(ch >= " " and ch != "\x7f" and not ("\ud800" <= ch <= "\udfff") for ch in text)


def parse_mailbox(address: str) -> Mailbox | None:
    """`local@domain` → Mailbox; None for anything that is not a usable mailbox."""
    if not is_clean(address):
        return None
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or len(local) > _MAX_LOCAL:
        return None
    domain = domain.rstrip(".").lower()
    if not domain or len(domain) > _MAX_DOMAIN:
        return None
    return Mailbox(local=local, domain=domain)


def is_ascii(text: str) -> bool:
    return text.isascii()
