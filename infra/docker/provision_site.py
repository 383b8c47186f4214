"""One-shot provisioning of a compose site: its mail domain and demo users, through its admin API.

Run by the `provision-alpha` / `provision-beta` services of docker-compose.yml once auth is healthy; it is
what `make lab` does natively (yubin/lab/provision.py, reused here), so it is idempotent: on a restarted
lab the domain exists already and each demo user's password is set again to the one in `.env`.

Environment (compose fills it from .env; not YUBIN_* settings, this is no service):
    SITE_DOMAIN   the site's domain, e.g. alpha.test
    ADMIN_URL     the site's auth service, e.g. http://auth-alpha:8080
    ADMIN_TOKEN   the site's admin token
    SITE_USERS    demo users, space-separated ADDRESS=PASSWORD pairs (may be empty)
    SITE_POSTMASTER  who gets postmaster@ and abuse@ of the domain (default: the first demo user, as
                  the native lab does: alice@alpha.test, bob@beta.test)
"""

import os
import sys

import httpx

from yubin.lab.provision import ProvisionError, ensure_domain, ensure_user, wait_healthy


def parse_users(value: str) -> dict[str, str]:
    users: dict[str, str] = {}
    for pair in value.split():
        address, sep, password = pair.partition("=")
        if not sep or not address or not password:
            raise ValueError(f"SITE_USERS: expected ADDRESS=PASSWORD, got {pair!r}")
        users[address] = password
    return users


def main() -> int:
    domain = os.environ["SITE_DOMAIN"]
    admin_url = os.environ["ADMIN_URL"]
    users = parse_users(os.environ.get("SITE_USERS", ""))
    headers = {"Authorization": f"Bearer {os.environ['ADMIN_TOKEN']}"}
    postmaster = os.environ.get("SITE_POSTMASTER") or next(iter(users), None)
    if postmaster is None:
        print(f"provision {domain}: SITE_POSTMASTER or a demo user is needed", file=sys.stderr)
        return 1
    try:
        wait_healthy(admin_url)
        with httpx.Client(base_url=admin_url, headers=headers, timeout=30.0) as client:
            ensure_domain(client, domain, postmaster)
            for address, password in users.items():
                ensure_user(client, address, password)
    except ProvisionError as exc:
        print(f"provision {domain}: {exc}", file=sys.stderr)
        return 1
    print(
        f"provisioned {domain}: domain (postmaster@, abuse@ → {postmaster}) and {len(users)} user(s) "
        f"{', '.join(users)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
