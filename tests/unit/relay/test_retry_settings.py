"""The relay's retry settings: the documented defaults, and lists from the environment."""

import pytest

from shared.config.relay import RelaySettings

SCHEDULE = [60.0, 300.0, 900.0, 1800.0, 3600.0]


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
