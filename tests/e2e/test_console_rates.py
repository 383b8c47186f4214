"""The console's map figures come from the services' own counters and queue gauges (docs/console.md):
the native lab's console scrapes every process's /metrics, and after alice sends bob a message and bob
retrieves it, the map reports a rate on every hop the message crossed and each site's queue depths."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Lab
from tests.e2e.mail import messages_with, token, wait_for, wait_for_message, yubin

pytestmark = pytest.mark.native_only  # the compose lab's info has no console URL yet

ALICE, BOB = "alice@alpha.test", "bob@beta.test"
ACTION = {"X-Yubin-Console": "1"}
# The hops alice → bob crosses, each measured by a counter (rates.COUNTERS). Delivery is one the trace-based
# figures never had a rate for: its only event (`stored`) counts at the mailbox.
CROSSED = (
    "alpha.test/submission",
    "dns",
    "alpha.test/relay",
    "beta.test/mx",
    "beta.test/delivery",
    "beta.test/mailbox",
    "beta.test/pop3",
)


@contextmanager
def logged_in(lab: Lab) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=lab.info["console"].rstrip("/"), timeout=10, trust_env=False) as client:
        answer = client.post("/api/login", json={"secret": lab.info["console_password"]}, headers=ACTION)
        assert answer.status_code == 200, answer.text
        yield client


def test_the_map_rates_and_depths_come_from_the_services_metrics(lab: Lab) -> None:
    with logged_in(lab) as client:

        def stats() -> dict[str, Any]:
            return client.get("/api/overview").json()["stats"]

        per_site = {
            site: sum(key.startswith(f"{site}/") for key in lab.info["metrics"]) for site in lab.info["sites"]
        }

        def every_target_up() -> dict[str, Any] | None:
            now = stats()
            scraped = {site: now.get(site, {}).get("targets", {}).get("up") for site in per_site}
            return now if scraped == per_site else None

        wait_for("the console to scrape every process's /metrics", every_target_up, timeout=60, every=1)

        tag = token()
        yubin(
            lab,
            "send",
            "--lab",
            "--from",
            ALICE,
            "--to",
            BOB,
            "--subject",
            f"rates {tag}",
            input=b"counted\n",
        )
        wait_for_message(lab, BOB, tag, timeout=60)  # over POP3: a RETR
        messages_with(lab, BOB, tag, delete=True)

        def counted() -> dict[str, Any] | None:
            now = stats()
            return (
                now
                if all((now[hop]["rate"] or 0) > 0 and (now[hop]["count"] or 0) >= 1 for hop in CROSSED)
                else None
            )

        try:
            now = wait_for("a rate on every hop the message crossed", counted, timeout=45, every=1)
        except AssertionError:
            now = stats()
            raise AssertionError({hop: now.get(hop) for hop in CROSSED}) from None
        # The queues are the site's gauges, exported by its auth service from Redis: the message left them.
        for site in ("alpha.test", "beta.test"):
            for role in ("relay", "delivery"):
                assert isinstance(now[f"{site}/{role}"]["depth"], int), now[f"{site}/{role}"]
            assert now[site]["dead_letters"] == 0
        assert now["alpha.test/client"]["rate"] is None  # nothing counts at the mail client itself
