"""A real Prometheus (Debian's) scrapes every process of the native lab: every target is up, and the
counters of each hop move when a message goes from alice to bob and bob retrieves it over POP3."""

import json
import os
import signal
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Lab
from tests.e2e.mail import messages_with, token, wait_for, wait_for_message, yubin
from tests.e2e.native_lab import NativeLab
from tests.fixtures.binaries import require_binary
from tests.fixtures.ports import free_port
from yubin.lab import prometheus as lab_prometheus

pytestmark = pytest.mark.native_only  # Prometheus is pointed at the native lab's processes

ALICE = "alice@alpha.test"
BOB = "bob@beta.test"


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=10) as response:
            answer = json.load(response)
        assert answer["status"] == "success", answer
        return answer["data"]

    def targets(self) -> list[dict[str, Any]]:
        return self.get("/api/v1/targets", state="active")["activeTargets"]

    def value(self, expression: str) -> float:
        """The value of a PromQL expression that yields one series at most (0 when it yields none)."""
        result = self.get("/api/v1/query", query=expression)["result"]
        assert len(result) <= 1, (expression, result)
        return float(result[0]["value"][1]) if result else 0.0


@pytest.fixture
def prometheus(native_lab: NativeLab, tmp_path: Path) -> Iterator[Prometheus]:
    binary = require_binary("prometheus", "prometheus")
    config = tmp_path / "prometheus.yml"
    # The lab's own configuration (what `make lab LAB_ARGS=--prometheus` runs), scraping every second.
    config.write_text(lab_prometheus.render(native_lab.config, scrape_interval="1s"))
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        server = Prometheus(f"http://127.0.0.1:{port}")

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(
                    f"prometheus exited:\n{(tmp_path / 'prometheus.log').read_text()[-3000:]}"
                )
            try:
                with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for("Prometheus to be ready", ready, timeout=60)
        yield server
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


# (what moves, PromQL of one series) for each hop of alice → bob, and bob's POP3 retrieval.
HOPS = {
    "alice logged in to submission": 'sum(yubin_auth_verifications_total{site="alpha.test",service="submission",result="ok"})',
    "alpha submission accepted it": 'sum(yubin_smtpd_messages_accepted_total{site="alpha.test",role="submission"})',
    "alpha submission's bytes": 'sum(yubin_smtpd_accepted_bytes_total{site="alpha.test",role="submission"})',
    "alpha submission replied 2xx": 'sum(yubin_smtpd_replies_total{site="alpha.test",role="submission",code_class="2xx"})',
    "alpha relay delivered it": 'sum(yubin_relay_attempts_total{site="alpha.test",result="delivered"})',
    "beta mx took a connection": 'sum(yubin_smtpd_connects_total{site="beta.test",role="mx"})',
    "beta mx accepted it": 'sum(yubin_smtpd_messages_accepted_total{site="beta.test",role="mx"})',
    "beta delivery stored it": 'sum(yubin_delivery_recipients_total{site="beta.test",result="stored"})',
    "beta's accept-to-stored delay": 'sum(yubin_delivery_delay_seconds_count{site="beta.test"})',
    "bob logged in to POP3": 'sum(yubin_pop3_logins_total{site="beta.test",result="ok"})',
    "bob retrieved it": 'sum(yubin_pop3_retrievals_total{site="beta.test",command="RETR"})',
}


def test_prometheus_scrapes_every_process_and_sees_a_message_travel(lab: Lab, prometheus: Prometheus) -> None:
    expected = set(lab.info["metrics"].values())

    def all_up() -> list[dict[str, Any]] | None:
        targets = prometheus.targets()
        up = [t for t in targets if t["health"] == "up"]
        return targets if len(up) == len(targets) == len(expected) else None

    targets = wait_for("every target up", all_up, timeout=90, every=1)
    assert {t["scrapeUrl"] for t in targets} == expected
    assert {(t["labels"]["site"], t["labels"]["role"]) for t in targets} == {
        tuple(key.split("/")) for key in lab.info["metrics"]
    }
    # Each site's auth service exports the site's queues, read from its Redis.
    for site in ("alpha.test", "beta.test"):
        assert wait_for(
            f"{site}'s queue gauges",
            lambda site=site: prometheus.value(f'yubin_queue_redis_up{{site="{site}"}}') == 1,
            timeout=30,
        )

    before = {hop: prometheus.value(query) for hop, query in HOPS.items()}
    tag = token()
    yubin(
        lab, "send", "--lab", "--from", ALICE, "--to", BOB, "--subject", f"metrics {tag}", input=b"counted\n"
    )
    wait_for_message(lab, BOB, tag, timeout=60)  # over POP3: a login and a RETR
    messages_with(lab, BOB, tag, delete=True)

    def moved() -> dict[str, float] | None:
        now = {hop: prometheus.value(query) for hop, query in HOPS.items()}
        return now if all(now[hop] > before[hop] for hop in HOPS) else None

    try:
        wait_for("every hop's counter to move", moved, timeout=60, every=1)
    except AssertionError:
        stuck = [hop for hop, query in HOPS.items() if prometheus.value(query) <= before[hop]]
        raise AssertionError(f"these counters did not move: {stuck}") from None
