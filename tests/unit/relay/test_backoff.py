"""The retry schedule: each wait in turn, the last one repeating, spread by the jitter."""

import random

import pytest

from services.relay.retry import backoff_delay
from shared.config.relay import RelaySettings

SCHEDULE = [60.0, 300.0, 900.0, 1800.0, 3600.0]


@pytest.mark.parametrize(
    ("attempts", "wait"), [(1, 60), (2, 300), (3, 900), (4, 1800), (5, 3600), (6, 3600), (40, 3600)]
)
def test_schedule_then_hourly(attempts: int, wait: float) -> None:
    assert backoff_delay(attempts, SCHEDULE, 0.0) == wait


def test_jitter_stays_within_bounds_and_varies() -> None:
    rng = random.Random(7)
    waits = [backoff_delay(2, SCHEDULE, 0.1, rng) for _ in range(200)]
    assert all(270 <= w <= 330 for w in waits)
    assert len(set(waits)) > 100


def test_default_settings_are_the_documented_schedule() -> None:
    settings = RelaySettings(service_token="t")
    assert settings.relay_retry_schedule_s == SCHEDULE
    assert settings.relay_max_queue_lifetime_s == 5 * 24 * 3600
    assert settings.relay_delay_warning_s == 4 * 3600


def test_lists_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YUBIN_RELAY_RETRY_SCHEDULE_S", "0.5, 1,2")
    monkeypatch.setenv("YUBIN_RELAY_OWN_ADDRESSES", "127.0.3.10,::1")
    monkeypatch.setenv("YUBIN_DNS_SERVER", "127.0.3.53:5353")
    settings = RelaySettings(service_token="t")
    assert settings.relay_retry_schedule_s == [0.5, 1.0, 2.0]
    assert settings.relay_own_addresses == ["127.0.3.10", "::1"]
    assert settings.dns_host_port == ("127.0.3.53", 5353)


def test_json_lists_work_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YUBIN_RELAY_RETRY_SCHEDULE_S", "[1, 2.5]")
    assert RelaySettings(service_token="t").relay_retry_schedule_s == [1.0, 2.5]


def test_an_empty_schedule_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YUBIN_RELAY_RETRY_SCHEDULE_S", "")
    with pytest.raises(ValueError, match="retry schedule"):
        RelaySettings(service_token="t")
