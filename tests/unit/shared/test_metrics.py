"""The metrics helpers and the services' metric functions, read back from prometheus_client's registry
and from the real /metrics endpoint over loopback."""

import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter

from services.auth import metrics as auth_metrics
from services.delivery import metrics as delivery_metrics
from services.delivery.retry_queue import DEFERRED
from services.relay import metrics as relay_metrics
from services.relay.retry import RETRY_KEY
from services.submission import metrics as smtpd_metrics
from shared.metrics import code_class, start_metrics_server
from shared.models import Envelope, RecipientState, RecipientStatus
from shared.queue_gauges import RETRY_SETS
from tests.fixtures.ports import free_port


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("250 2.0.0 Ok", "2xx"),
        ("250-PIPELINING", "2xx"),
        ("354 End data with <CR><LF>.<CR><LF>", "3xx"),
        ("421 4.7.0 mx.alpha.test Error: too many errors", "4xx"),
        ("550", "5xx"),
        ("2500 not a code", "other"),
        ("hello", "other"),
        ("", "other"),
        ("<script>", "other"),
    ],
)
def test_code_class(reply: str, expected: str) -> None:
    assert code_class(reply) == expected


@dataclass
class Endpoint:
    metrics_host: str
    metrics_port: int


def test_port_zero_serves_nothing() -> None:
    assert start_metrics_server(Endpoint("127.0.0.1", 0)) is None


def test_the_endpoint_serves_the_registry_over_http() -> None:
    registry = CollectorRegistry()
    Counter("probe", "A counter of this test.", registry=registry).inc(3)
    port = start_metrics_server(Endpoint("127.0.0.1", free_port()), registry)
    assert port is not None
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    assert "probe_total 3.0" in text


def test_a_busy_port_fails_the_start() -> None:
    registry = CollectorRegistry()
    port = start_metrics_server(Endpoint("127.0.0.1", free_port()), registry)
    assert port is not None
    with pytest.raises(OSError):
        start_metrics_server(Endpoint("127.0.0.1", port), registry)


def test_smtpd_replies_and_accepted_messages() -> None:
    before = value("yubin_smtpd_replies_total", role="mx", code_class="5xx")
    smtpd_metrics.replied("mx", "550 5.1.1 no such user")
    assert value("yubin_smtpd_replies_total", role="mx", code_class="5xx") == before + 1
    messages = value("yubin_smtpd_messages_accepted_total", role="submission")
    octets = value("yubin_smtpd_accepted_bytes_total", role="submission")
    smtpd_metrics.accepted("submission", 1234)
    assert value("yubin_smtpd_messages_accepted_total", role="submission") == messages + 1
    assert value("yubin_smtpd_accepted_bytes_total", role="submission") == octets + 1234


def envelope(age_s: float) -> Envelope:
    return Envelope(
        sender="alice@alpha.test",
        recipients=["bob@beta.test"],
        body_id="b",
        received_at=datetime.now(UTC) - timedelta(seconds=age_s),
    )


def status(recipient: str, state: RecipientState) -> RecipientStatus:
    return RecipientStatus(recipient=recipient, state=state, status="2.0.0")


def test_relay_counts_each_recipient_and_the_delay_of_final_answers() -> None:
    names = ("delivered", "deferred", "bounced")
    before = {r: value("yubin_relay_attempts_total", result=r) for r in names}
    delays = value("yubin_relay_delivery_delay_seconds_count", result="delivered")
    slow = value("yubin_relay_delivery_delay_seconds_bucket", result="delivered", le="60.0")
    relay_metrics.finished(
        envelope(30),
        [
            status("a@beta.test", RecipientState.DELIVERED),
            status("b@beta.test", RecipientState.DELIVERED),
            status("c@beta.test", RecipientState.DEFERRED),
            status("d@beta.test", RecipientState.FAILED),
        ],
    )
    after = {r: value("yubin_relay_attempts_total", result=r) for r in names}
    assert {r: after[r] - before[r] for r in names} == {"delivered": 2, "deferred": 1, "bounced": 1}
    assert value("yubin_relay_delivery_delay_seconds_count", result="delivered") == delays + 2
    # 30 s old: in the 60 s bucket, not in the 10 s one.
    assert value("yubin_relay_delivery_delay_seconds_bucket", result="delivered", le="60.0") == slow + 2


@dataclass
class Outcome:
    stored: Path | None = None
    duplicate_of: str | None = None


def test_delivery_counts_results_and_observes_accept_to_stored() -> None:
    names = ("stored", "duplicate", "deferred", "bounced")
    before = {r: value("yubin_delivery_recipients_total", result=r) for r in names}
    observed = value("yubin_delivery_delay_seconds_count")
    total = value("yubin_delivery_delay_seconds_sum")
    delivery_metrics.finished(
        envelope(5),
        [Outcome(stored=Path("new/1")), Outcome(duplicate_of="Q1"), Outcome()],
        failed=[status("x@alpha.test", RecipientState.FAILED)],
        deferred=[],
    )
    after = {r: value("yubin_delivery_recipients_total", result=r) for r in names}
    assert {r: after[r] - before[r] for r in names} == {
        "stored": 1,
        "duplicate": 1,
        "deferred": 0,
        "bounced": 1,
    }
    assert value("yubin_delivery_delay_seconds_count") == observed + 1
    assert 5 <= value("yubin_delivery_delay_seconds_sum") - total < 60


def test_auth_verifications_keep_the_service_label_bounded() -> None:
    before = value("yubin_auth_verifications_total", service="other", result="failed")
    auth_metrics.verified("<script>x</script>", "failed")
    assert value("yubin_auth_verifications_total", service="other", result="failed") == before + 1
    assert (
        REGISTRY.get_sample_value(
            "yubin_auth_verifications_total", {"service": "<script>x</script>", "result": "failed"}
        )
        is None
    )


def test_the_queue_gauges_read_the_services_retry_sets() -> None:
    assert RETRY_SETS == {"relay": RETRY_KEY, "delivery": DEFERRED}
