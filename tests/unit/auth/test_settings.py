import pytest
from pydantic import ValidationError

from shared.config.auth import AuthSettings

ADMIN = "admin-token-0123456789"
SERVICE = "service-token-0123456789"


def test_tokens_are_required(monkeypatch):
    monkeypatch.delenv("YUBIN_ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("YUBIN_SERVICE_TOKEN", raising=False)
    with pytest.raises(ValidationError) as info:
        AuthSettings()
    assert {error["loc"][0] for error in info.value.errors()} == {"admin_token", "service_token"}


def test_settings_come_from_yubin_environment_variables(monkeypatch):
    monkeypatch.setenv("YUBIN_ADMIN_TOKEN", ADMIN)
    monkeypatch.setenv("YUBIN_SERVICE_TOKEN", SERVICE)
    monkeypatch.setenv("YUBIN_AUTH_DELAY_BASE_S", "3")
    settings = AuthSettings()
    assert settings.admin_token.get_secret_value() == ADMIN
    assert (settings.auth_host, settings.auth_port) == ("127.0.0.1", 8080)
    assert (settings.auth_pair_free_failures, settings.auth_ip_free_failures, settings.auth_delay_base_s) == (
        3,
        10,
        3,
    )
    assert settings.auth_failure_window_s == 900


def test_short_tokens_are_refused():
    with pytest.raises(ValidationError, match="YUBIN_ADMIN_TOKEN must be at least 16"):
        AuthSettings(admin_token="short", service_token=SERVICE)


def test_the_admin_token_must_differ_from_the_service_token():
    with pytest.raises(ValidationError, match="must differ"):
        AuthSettings(admin_token=SERVICE, service_token=SERVICE)


def test_every_setting_is_described():
    for name, field in AuthSettings.model_fields.items():
        assert field.description, name


def test_the_longest_delay_is_not_shorter_than_the_first():
    with pytest.raises(ValidationError, match="YUBIN_AUTH_DELAY_MAX_S must be at least"):
        AuthSettings(admin_token=ADMIN, service_token=SERVICE, auth_delay_base_s=10, auth_delay_max_s=5)
