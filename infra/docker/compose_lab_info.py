"""Write the lab-info JSON of a running compose lab (the shape `yubin lab info --json` prints).

    python infra/docker/compose_lab_info.py OUT CERT -- docker-compose -p PROJECT -f docker-compose.yml ...

The endpoints are asked from compose (`port`), the secrets are the ones compose was given (the .env
variables, read from this process's environment), CERT is the lab's certificate copied out of the `tls`
volume. Besides the sites: `dns` (CoreDNS), `resolver` (the relays' DNS, where dns-servfail faults apply),
`console` (the web console's URL) and `console_password`, as `yubin lab info --json` has them. `YUBIN_E2E_LAB_INFO=OUT` points the end-to-end tests at the lab, `YUBIN_LAB_INFO=OUT` the `yubin` CLI.
"""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from yubin.lab.info import write_info

SITES = {
    # domain: (service suffix, env prefix, demo user, its password variable)
    "alpha.test": ("alpha", "ALPHA", "alice@alpha.test", "ALICE_PASSWORD"),
    "beta.test": ("beta", "BETA", "bob@beta.test", "BOB_PASSWORD"),
}
# The lab's well-known secrets: docker-compose.yml's `${VAR:-default}`s (a test keeps the two equal);
# a .env in the environment overrides them, as it does for compose.
LAB_DEFAULTS = {
    "ALPHA_ADMIN_TOKEN": "alpha-admin-lab-token",
    "BETA_ADMIN_TOKEN": "beta-admin-lab-token",
    "ALICE_PASSWORD": "secret-alice",
    "BOB_PASSWORD": "secret-bob",
    "CONSOLE_PASSWORD": "console-lab-password",
}
# Where `front` (HAProxy) listens for each site's services (infra/haproxy/haproxy.cfg).
FRONT_PORTS = {
    "alpha": {"admin": 10080, "pop3": 10110, "submission": 10587, "mx": 10025},
    "beta": {"admin": 20080, "pop3": 20110, "submission": 20587, "mx": 20025},
}


def secret(name: str) -> str:
    return os.environ.get(name) or LAB_DEFAULTS[name]


def published(compose: list[str], service: str, port: int, protocol: str = "tcp") -> str:
    """HOST:PORT on the host for the service's container port (first replica)."""
    result = subprocess.run(
        [*compose, "port", f"--protocol={protocol}", service, str(port)],
        capture_output=True,
        text=True,
        check=True,
    )
    address = result.stdout.strip()
    if not address or address.endswith(":0"):
        raise RuntimeError(f"{service} publishes no port {port}/{protocol}")
    return address


def lab_info(compose: list[str], cert: Path) -> dict[str, Any]:
    sites: dict[str, Any] = {}
    for domain, (name, prefix, user, password_var) in SITES.items():
        front = FRONT_PORTS[name]
        sites[domain] = {
            "submission": published(compose, "front", front["submission"]),
            "mx": published(compose, "front", front["mx"]),
            "pop3": published(compose, "front", front["pop3"]),
            "admin": "http://" + published(compose, "front", front["admin"]),
            "admin_token": secret(f"{prefix}_ADMIN_TOKEN"),
            "users": {user: secret(password_var)},
        }
    return {
        "dns": published(compose, "coredns", 53, "udp"),
        "resolver": published(compose, "resolver", 53, "udp"),
        "sites": sites,
        "tls_cert": str(cert),
        "console": f"http://{published(compose, 'console', 8025)}/",
        "console_password": secret("CONSOLE_PASSWORD"),
    }


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    out, cert, compose = Path(argv[0]), Path(argv[1]).resolve(), argv[3:]
    write_info(out, lab_info(compose, cert))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
