"""What the benchmark talks to: a Yubin lab (from its lab info) or the reference Postfix + Dovecot lab.

Both have the same shape: senders at alpha.test (submission with AUTH), recipients at beta.test (POP3),
and beta's Maildirs at `<mail root>/beta.test/<user>/new`, which the benchmark watches for arrivals.
"""

import json
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.reference_lab import INFO as REFERENCE_INFO


@dataclass
class Target:
    name: str
    submission: tuple[str, int]
    pop3: tuple[str, int]
    senders: dict[str, str]  # address → password
    recipients: dict[str, str]
    mail_root: Path  # beta's mail root: <mail root>/<domain>/<local part>/new

    def maildir_new(self, address: str) -> Path:
        local, _, domain = address.partition("@")
        return self.mail_root / domain / local / "new"


def hostport(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host, int(port)


def yubin_target(info: dict, sessions: int) -> Target:
    """Bench users (benchN@alpha.test → benchN@beta.test) created through the admin API of each site."""
    alpha, beta = info["sites"]["alpha.test"], info["sites"]["beta.test"]
    password = "bench-" + secrets.token_hex(8)
    senders = {f"bench{n}@alpha.test": password for n in range(1, sessions + 1)}
    recipients = {f"bench{n}@beta.test": password for n in range(1, sessions + 1)}
    for site, users in ((alpha, senders), (beta, recipients)):
        with httpx.Client(
            base_url=site["admin"], headers={"Authorization": f"Bearer {site['admin_token']}"}, timeout=30
        ) as admin:
            for address in users:
                response = admin.post("/v1/users", json={"address": address, "password": password})
                if response.status_code == 409:
                    response = admin.patch(
                        f"/v1/users/{address}", json={"password": password, "enabled": True}
                    )
                response.raise_for_status()
    return Target(
        name="yubin",
        submission=hostport(alpha["submission"]),
        pop3=hostport(beta["pop3"]),
        senders=senders,
        recipients=recipients,
        mail_root=Path(beta["mail_root"]),
    )


def reference_target(sessions: int) -> Target:
    """The reference lab's users: userN@{alpha,beta}.test with password secret-N (bench/reference_lab.py)."""
    info = json.loads(REFERENCE_INFO.read_text())
    alpha, beta = info["sites"]["alpha.test"], info["sites"]["beta.test"]
    users = range(1, sessions + 1)
    return Target(
        name="reference",
        submission=hostport(alpha["submission"]),
        pop3=hostport(beta["pop3"]),
        senders={f"user{n}@alpha.test": f"secret-{n}" for n in users},
        recipients={f"user{n}@beta.test": f"secret-{n}" for n in users},
        mail_root=Path(beta["mail_root"]),
    )


def reference_lab_up() -> bool:
    """`make bench-reference` ran and its submission port answers."""
    if not REFERENCE_INFO.exists():
        return False
    host, port = hostport(json.loads(REFERENCE_INFO.read_text())["sites"]["alpha.test"]["submission"])
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
