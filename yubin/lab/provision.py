"""Creating the lab's domains (with their postmaster@ and abuse@ aliases) and demo users through each
site's admin API, once auth answers.

Idempotent: on a restarted lab the domains, aliases and users exist already (they live in Redis); the
password is set again so it always matches `credentials.json`. A domain made before aliases existed gets
its postmaster@ and abuse@ aliases added.
"""

import time

import httpx

from yubin.lab.config import LabConfig
from yubin.lab.credentials import SiteCredentials


class ProvisionError(RuntimeError):
    pass


def wait_healthy(admin_url: str, timeout: float = 60.0, alive=lambda: True) -> None:
    """Wait until the auth service answers /healthz (it checks its Redis too)."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if not alive():
            raise ProvisionError("the lab stopped while waiting for the auth service")
        try:
            response = httpx.get(f"{admin_url}/healthz", timeout=1.0)
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            last = str(exc) or type(exc).__name__
        time.sleep(0.1)
    raise ProvisionError(f"auth service at {admin_url} not healthy after {timeout:.0f} s: {last}")


ROLE_ALIASES = ("postmaster", "abuse")


def ensure_domain(client: httpx.Client, name: str, postmaster: str) -> None:
    """The domain, and its postmaster@ and abuse@ aliases pointing at `postmaster`."""
    response = client.post("/v1/domains", json={"name": name, "postmaster": postmaster})
    if response.status_code in (200, 201):
        return
    if response.status_code != 409:
        raise ProvisionError(f"creating domain {name}: HTTP {response.status_code} {response.text}")
    for role in ROLE_ALIASES:  # an existing domain: its aliases may predate this lab, or be missing
        alias = {"address": f"{role}@{name}", "destinations": [postmaster]}
        response = client.post("/v1/aliases", json=alias)
        if response.status_code not in (200, 201, 409):
            raise ProvisionError(f"creating alias {role}@{name}: HTTP {response.status_code} {response.text}")


def ensure_user(client: httpx.Client, address: str, password: str) -> None:
    response = client.post("/v1/users", json={"address": address, "password": password})
    if response.status_code == 409:
        response = client.patch(f"/v1/users/{address}", json={"password": password, "enabled": True})
    if response.status_code not in (200, 201):
        raise ProvisionError(f"creating user {address}: HTTP {response.status_code} {response.text}")


def provision(config: LabConfig, credentials: dict[str, SiteCredentials], alive=lambda: True) -> None:
    for site in config.sites:
        wait_healthy(site.admin_url, alive=alive)
        creds = credentials[site.domain]
        headers = {"Authorization": f"Bearer {creds.admin_token}"}
        with httpx.Client(base_url=site.admin_url, headers=headers, timeout=30.0) as client:
            ensure_domain(client, site.domain, site.postmaster)
            for address, password in creds.users.items():
                ensure_user(client, address, password)
