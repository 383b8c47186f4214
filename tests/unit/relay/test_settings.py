"""Relay settings that are checked at start-up rather than failing every delivery later."""

import pytest
from pydantic import ValidationError

from shared.config.relay import RelaySettings


def settings(**values: object) -> RelaySettings:
    return RelaySettings(service_token="s" * 32, **values)


def test_source_address_is_optional() -> None:
    assert settings().relay_source_address == ""
    assert settings(relay_source_address="127.0.3.10").relay_source_address == "127.0.3.10"


def test_source_address_must_be_an_address() -> None:
    with pytest.raises(ValidationError, match="relay_source_address"):
        settings(relay_source_address="mx.alpha.test")


def test_connection_reuse_and_dns_cache_can_be_turned_off() -> None:
    off = settings(relay_connection_cache_idle_s=0, dns_cache_size=0, dns_negative_cache_s=0)
    assert (off.relay_connection_cache_idle_s, off.dns_cache_size, off.dns_negative_cache_s) == (0, 0, 0)
    with pytest.raises(ValidationError):
        settings(relay_connection_cache_max=-1)
