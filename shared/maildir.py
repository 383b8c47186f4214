"""Where a user's mailbox lives: `<mail root>/<domain>/<local part>/`, a Maildir (tmp, new, cur).

Delivery writes there and POP3 reads there; both find the directory through `mailbox_path`, which refuses
any address that could step outside the mail root.
"""

import re
from pathlib import Path

# Canonical addresses are lower-case (the auth service normalizes them). Anything that is not a plain
# dot-atom local part could name another directory ("..", "/"): refuse rather than escape.
_LOCAL_PART = re.compile(r"^[a-z0-9!#$%&'*+=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+=?^_`{|}~-]+)*$")
_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$")


class UnsafeAddress(ValueError):
    """The address cannot be mapped to a directory safely."""


def mailbox_path(mail_root: Path, address: str) -> Path:
    local, sep, domain = address.rpartition("@")
    if not sep or not _LOCAL_PART.match(local) or not _DOMAIN.match(domain) or len(address) > 254:
        raise UnsafeAddress(f"not a canonical mailbox address: {address!r}")
    return mail_root / domain / local
