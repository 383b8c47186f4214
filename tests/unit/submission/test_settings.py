import pytest

from shared.config.submission import SmtpRole, SubmissionSettings


@pytest.mark.parametrize(("role", "port"), [("submission", 587), ("mx", 25)])
def test_default_port_follows_the_role(monkeypatch: pytest.MonkeyPatch, role: str, port: int) -> None:
    monkeypatch.setenv("YUBIN_SERVICE_TOKEN", "t")
    monkeypatch.setenv("YUBIN_SMTP_ROLE", role)
    settings = SubmissionSettings()
    assert settings.smtp_role is SmtpRole(role)
    assert settings.listen_port == port
    assert settings.max_message_size == 25 * 1024 * 1024
    assert settings.allow_plaintext_auth is False


def test_every_setting_is_described() -> None:
    for name, field in SubmissionSettings.model_fields.items():
        assert field.description, name


@pytest.mark.parametrize(
    ("hostname", "postmaster_domain", "own"),
    [
        ("mx.alpha.test", None, "alpha.test"),  # like Postfix's $mydomain
        ("MX.Beta.Test.", None, "beta.test"),
        ("alpha.test", None, "alpha.test"),
        ("localhost", None, "localhost"),
        ("mx.alpha.test", "Example.ORG.", "example.org"),
    ],
)
def test_the_bare_postmasters_domain(hostname: str, postmaster_domain: str | None, own: str) -> None:
    settings = SubmissionSettings(service_token="t", hostname=hostname, postmaster_domain=postmaster_domain)
    assert settings.own_domain == own
