"""The running docker compose lab (`make test-compose`, marked `compose`): DNS, and one message on the
mission path sent with swaks and fetched with curl. The full end-to-end suite (tests/e2e) runs after it
against the same lab; these checks are the compose-specific part: CoreDNS answering with the compose
addresses, and mail crossing from one site's containers to the other's.
"""

import json
import os
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rdatatype
import pytest

from tests.fixtures.binaries import require_binary

pytestmark = pytest.mark.compose

LAB_INFO_ENV = "YUBIN_E2E_LAB_INFO"


@pytest.fixture(scope="module")
def info() -> dict[str, Any]:
    path = os.environ.get(LAB_INFO_ENV)
    if not path:
        pytest.fail(f"{LAB_INFO_ENV} is not set: run `make test-compose`, which starts the compose lab")
    return json.loads(Path(path).read_text())


def split(hostport: str) -> tuple[str, int]:
    host, _, port = hostport.rpartition(":")
    return host, int(port)


def test_dns_serves_the_compose_addresses(info: dict[str, Any]) -> None:
    host, port = split(info["dns"])
    mx = dns.query.udp(dns.message.make_query("beta.test", "MX"), host, port=port, timeout=5)
    assert [rr.exchange.to_text() for rrset in mx.answer for rr in rrset] == ["mx.beta.test."]
    a = dns.query.udp(dns.message.make_query("mx.beta.test", "A"), host, port=port, timeout=5)
    assert [rr.address for rrset in a.answer for rr in rrset] == ["10.127.3.20"]


def pop3_messages(info: dict[str, Any], address: str, password: str) -> list[bytes]:
    """Every message in the maildrop, fetched with curl (one POP3 session per message, RETR n)."""
    curl = require_binary("curl", "curl")
    url = f"pop3://{info['sites']['beta.test']['pop3']}/"
    common = [curl, "--silent", "--show-error", "--max-time", "20", "--user", f"{address}:{password}"]
    listing = subprocess.run([*common, url], capture_output=True, check=True).stdout.decode()
    numbers = [line.split()[0] for line in listing.splitlines() if line.strip()]
    return [subprocess.run([*common, url + n], capture_output=True, check=True).stdout for n in numbers]


def test_swaks_submission_at_alpha_then_curl_pop3_at_beta(info: dict[str, Any]) -> None:
    swaks = require_binary("swaks", "swaks")
    alpha, beta = info["sites"]["alpha.test"], info["sites"]["beta.test"]
    alice, alice_password = next(iter(alpha["users"].items()))
    bob, bob_password = next(iter(beta["users"].items()))
    marker = f"compose-{secrets.token_hex(6)}"
    body = f"Hello Bob, this crossed from alpha's containers to beta's. {marker}"
    subprocess.run(
        [
            swaks, "--silent", "2", "--server", alpha["submission"],
            "--auth", "PLAIN", "--auth-user", alice, "--auth-password", alice_password,
            "--from", alice, "--to", bob, "--header", f"Subject: {marker}", "--body", body,
        ],
        check=True,
        timeout=60,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    found: list[bytes] = []
    while not found and time.monotonic() < deadline:
        found = [m for m in pop3_messages(info, bob, bob_password) if marker.encode() in m]
        time.sleep(0.5)
    assert len(found) == 1, f"{marker} did not arrive at {bob} exactly once"
    message = found[0].replace(b"\r\n", b"\n")
    assert f"Subject: {marker}".encode() in message
    assert body.encode() in message
    # Relayed by alpha to beta's MX: beta's MX wrote the top Received header.
    assert b"mx.beta.test" in message.split(b"\n\n", 1)[0]
