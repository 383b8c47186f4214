"""A `dns-servfail` fault in the running docker compose lab (`make test-compose`, marked `compose`): added at
alpha's admin API for beta.test, it makes the `resolver` container answer SERVFAIL to alpha's relay, which
defers alice's message to bob with the DNS error (4.4.3) in alpha's trace; removed, the message is
delivered. Everything goes through the lab's published ports: the admin API, submission and POP3.
"""

import json
import time
from typing import Any

import dns.message
import dns.query
import httpx
import pytest

from tests.e2e.conftest import Lab
from tests.e2e.mail import hostport, messages_with, token, wait_for, wait_for_message, yubin

pytestmark = pytest.mark.compose

ALICE, BOB = "alice@alpha.test", "bob@beta.test"
FAULT_REFRESH_S = 1.2
"""The resolver re-reads the sites' faults at most once a second (yubin/lab/dns_front.py)."""


def admin(lab: Lab, domain: str) -> httpx.Client:
    site = lab.site(domain)
    return httpx.Client(
        base_url=site["admin"], headers={"Authorization": f"Bearer {site['admin_token']}"}, timeout=20
    )


def cached_for_s(lab: Lab) -> int:
    """How long alpha's relay may keep the answers it needs for beta.test (it caches them for their TTL)."""
    host, port = hostport(lab.info["dns"])
    ttls = []
    for name, rdtype in (("beta.test", "MX"), ("mx.beta.test", "A")):
        reply = dns.query.udp(dns.message.make_query(name, rdtype), host, port=port, timeout=5)
        ttls += [rrset.ttl for rrset in reply.answer]
    assert ttls, "CoreDNS has no answer for beta.test"
    return max(ttls)


def trace(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/v1/trace", params={"last": "true", "limit": 1000, **params})
    response.raise_for_status()
    return response.json()["events"]


def test_a_dns_servfail_fault_defers_alphas_relay_until_it_is_removed(lab: Lab) -> None:
    alpha = admin(lab, "alpha.test")
    wait_out_s = cached_for_s(lab) + FAULT_REFRESH_S
    added = alpha.post(
        "/v1/faults", json={"kind": "dns-servfail", "domain": "beta.test", "expires_in_s": 600}
    )
    assert added.status_code == 201, added.text
    fault = added.json()
    try:
        # An MX answer alpha's relay got before the fault (earlier tests sent to bob) would still be served
        # from its cache; after its TTL every lookup reaches the resolver, and no SERVFAIL is cached.
        time.sleep(wait_out_s)
        tag = token()
        sent = yubin(lab, "send", "--lab", "--from", ALICE, "--to", BOB, "--subject", tag, "--json", "hi")
        queue_id = json.loads(sent.stdout)["queue_id"]

        def deferred() -> list[dict[str, Any]] | None:
            events = trace(alpha, queue_id=queue_id)
            assert not [e for e in events if e["event"] == "delivered"], (
                "delivered: the relay's DNS ignores faults"
            )
            return [e for e in events if e["event"] == "deferred"] or None

        first = wait_for("alpha's relay to defer on the DNS fault", deferred, timeout=60, every=1)[0]
        assert first["service"] == "relay"
        outcome = json.dumps(first["detail"]["recipients"][BOB])
        assert "4.4.3" in outcome and "DNS lookup of beta.test/MX failed" in outcome, outcome
        # The resolver wrote the SERVFAIL it answered to the trace of the site that owns the fault.
        struck = [
            e for e in trace(alpha) if e["service"] == "dns" and e["detail"].get("fault_id") == fault["id"]
        ]
        assert struck and struck[0]["event"] == "fault" and struck[0]["detail"]["qname"] == "beta.test"
        assert not messages_with(lab, BOB, tag)
    finally:
        removed = alpha.delete(f"/v1/faults/{fault['id']}")
    assert removed.status_code == 204, removed.text
    assert fault["id"] not in alpha.get("/v1/faults").text

    time.sleep(FAULT_REFRESH_S)
    # Attempt now rather than at the next retry; 404 when the retry is already under way.
    retried = alpha.post(f"/v1/queue/deferred/{queue_id}/retry")
    assert retried.status_code in (200, 404), retried.text
    wait_for_message(lab, BOB, tag, timeout=60)
    # Written once beta's MX has said 250, which may be after bob's copy is stored.
    wait_for(
        "alpha's relay to trace the delivery",
        lambda: any(e["event"] == "delivered" for e in trace(alpha, queue_id=queue_id)),
    )
