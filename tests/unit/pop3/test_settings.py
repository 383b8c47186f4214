"""Pop3Settings: safe defaults, and a TLS certificate never without its key."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.config.pop3 import Pop3Settings


def settings(**fields: object) -> Pop3Settings:
    return Pop3Settings(service_token="t" * 32, **fields)


def test_defaults_are_secure_and_follow_the_rfcs() -> None:
    s = settings()
    assert s.pop3_port == 110
    assert s.pop3_allow_plaintext_auth is False
    assert s.pop3_idle_timeout_s >= 600  # RFC 1939 §3: at least 10 minutes
    assert s.pop3_max_line == 255  # RFC 2449 §4
    assert not s.tls_configured


def test_tls_needs_cert_and_key() -> None:
    with pytest.raises(ValidationError):
        settings(pop3_tls_cert=Path("/c.pem"))
    assert settings(pop3_tls_cert=Path("/c.pem"), pop3_tls_key=Path("/k.pem")).tls_configured


def test_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YUBIN_SERVICE_TOKEN", "t" * 32)
    monkeypatch.setenv("YUBIN_POP3_PORT", "11110")
    monkeypatch.setenv("YUBIN_MAIL_ROOT", "/srv/mail")
    monkeypatch.setenv("YUBIN_POP3_ALLOW_PLAINTEXT_AUTH", "true")
    s = Pop3Settings()
    assert (s.pop3_port, s.mail_root, s.pop3_allow_plaintext_auth) == (11110, Path("/srv/mail"), True)


def test_every_setting_is_described() -> None:
    assert all(field.description for field in Pop3Settings.model_fields.values())
