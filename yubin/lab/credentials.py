"""The lab's secrets: admin and service tokens per site, demo users' passwords.

Generated once and kept in `<lab dir>/credentials.json` (mode 0600), so a restarted lab has the same
passwords and the mail in its Redis and Maildirs stays reachable.
"""

import json
import os
import secrets
import string
from dataclasses import dataclass, field
from pathlib import Path

from yubin.lab.config import LabConfig


@dataclass
class SiteCredentials:
    admin_token: str
    service_token: str
    users: dict[str, str] = field(default_factory=dict)
    """address → password"""


PASSWORD_ALPHABET = string.ascii_letters + string.digits


def new_password() -> str:
    # Readable enough to type into a desktop client, long enough not to be guessed (16 of 62: ~95 bits).
    # Letters and digits only: a password starting with "-" (token_urlsafe's alphabet) reads as an option
    # to swaks, curl or mpop on the command line that the lab guide prints.
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(16))


def new_token() -> str:
    return secrets.token_hex(32)


def load_or_create(config: LabConfig) -> dict[str, SiteCredentials]:
    """The credentials of every site, creating what is missing (a new site, a new demo user)."""
    path = config.lab_dir / "credentials.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    result: dict[str, SiteCredentials] = {}
    for site in config.sites:
        entry = stored.get(site.domain, {})
        creds = SiteCredentials(
            admin_token=entry.get("admin_token") or new_token(),
            service_token=entry.get("service_token") or new_token(),
            users=dict(entry.get("users", {})),
        )
        for local in site.demo_users:
            creds.users.setdefault(f"{local}@{site.domain}", new_password())
        result[site.domain] = creds
    save(path, result)
    return result


def save(path: Path, credentials: dict[str, SiteCredentials]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {domain: vars(creds) for domain, creds in credentials.items()}
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, indent=2)
    tmp.replace(path)
