"""Canonical mailbox addresses and domain names, as the directory stores them.

Domains are lower-case ASCII (IDNA: `Bücher.test` → `xn--bcher-kva.test`); local parts are lower-case
plain dot-atoms. Nothing else is stored, so every stored address is a safe Maildir path
(`shared.maildir.mailbox_path`) and every lookup of the same mailbox finds the same key.
"""

import re

import idna

DOMAIN_MAX = 253
LOCAL_PART_MAX = 64
ADDRESS_MAX = 254  # RFC 5321 path limit minus the angle brackets

_LOCAL_PART = re.compile(r"^[a-z0-9!#$%&'*+=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class InvalidAddress(ValueError):
    """Not an address (or domain name) the directory can hold; the message says why."""


def normalize_domain(name: str) -> str:
    raw = name.strip().removesuffix(".")
    if not raw or len(raw) > DOMAIN_MAX:
        raise InvalidAddress(f"domain must be 1 to {DOMAIN_MAX} characters")
    try:
        # UTS #46 mapping lower-cases and folds Unicode the way browsers and resolvers do.
        ascii_name = idna.encode(raw, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise InvalidAddress(f"not a valid domain name: {name!r} ({exc})") from exc
    labels = ascii_name.split(".")
    if len(ascii_name) > DOMAIN_MAX or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise InvalidAddress(f"not a valid domain name: {name!r} (need letters, digits, hyphens, a dot)")
    return ascii_name


def normalize_address(address: str) -> str:
    local, sep, domain = address.strip().rpartition("@")
    if not sep:
        raise InvalidAddress(f"not an address (no @): {address!r}")
    local = local.lower()
    if not local or len(local) > LOCAL_PART_MAX:
        raise InvalidAddress(f"local part must be 1 to {LOCAL_PART_MAX} characters")
    if not _LOCAL_PART.match(local):
        # Quoted strings, spaces, "..", "/" and non-ASCII are refused: they are rare in real mailboxes
        # and each is a way to make two spellings of one mailbox or to escape the mail root.
        raise InvalidAddress(
            f"local part must be a plain dot-atom (letters, digits, !#$%&'*+=?^_`{{|}}~-): {address!r}"
        )
    canonical = f"{local}@{normalize_domain(domain)}"
    if len(canonical) > ADDRESS_MAX:
        raise InvalidAddress(f"address must be at most {ADDRESS_MAX} characters")
    return canonical


def domain_of(address: str) -> str:
    """The domain of a canonical address."""
    return address.rpartition("@")[2]
