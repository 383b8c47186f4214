"""Mailbox addresses as MAIL FROM and RCPT TO name them (parsed by `paths`, the RFC 5321 grammar).

A source route (`<@relay:user@domain>` → `user@domain`) is dropped (RFC 5321 §4.1.1.3 says to ignore
it); quoted local parts are kept as written (`"user@other"@domain`) so the policies can refuse them.
"""

from dataclasses import dataclass

NULL_PATH = "<>"
"""What aiosmtpd's envelope.mail_from holds for the null reverse-path (it must be truthy)."""

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
    """A bare `local@domain` (a login name, not a path) → Mailbox; None if it is not a usable mailbox."""
    if not is_clean(address):
        return None
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or len(local) > _MAX_LOCAL:
        return None
    domain = domain.rstrip(".").lower()
    if not domain or len(domain) > _MAX_DOMAIN:
        return None
    return Mailbox(local=local, domain=domain)
