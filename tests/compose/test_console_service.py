"""The compose lab's web console: its settings parse, name each site's own admin API, token, submission
and users, it is published on loopback only, and its code is in the image."""

import os

import pytest

from tests.compose.compose_file import ROOT, environment, interpolate, load
from tests.compose.test_compose_file import published_ports
from yubin.console.settings import ConsoleSettings

SERVICES = load()["services"]
VARIABLES = {
    "ALPHA_ADMIN_TOKEN": "alpha-admin-0123456789abcdef",
    "BETA_ADMIN_TOKEN": "beta-admin-0123456789abcdef",
    "ALICE_PASSWORD": "alice-0123456789abcdef",
    "BOB_PASSWORD": "bob-0123456789abcdef",
    "CONSOLE_PASSWORD": "console-0123456789abcdef",
}


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> ConsoleSettings:
    for key in list(os.environ):
        if key.startswith("YUBIN_"):
            monkeypatch.delenv(key)
    for key, value in environment(SERVICES["console"]).items():
        monkeypatch.setenv(key, interpolate(value, VARIABLES))
    return ConsoleSettings()


def test_the_console_watches_both_sites_with_their_own_tokens(settings: ConsoleSettings) -> None:
    sites = {e.domain: e for e in settings.endpoints()}
    assert set(sites) == {"alpha.test", "beta.test"}
    for domain, user in (("alpha.test", "alice@alpha.test"), ("beta.test", "bob@beta.test")):
        name = domain.split(".")[0]
        site = sites[domain]
        assert site.admin == f"http://auth-{name}:8080"
        auth_token = interpolate(environment(SERVICES[f"auth-{name}"])["YUBIN_ADMIN_TOKEN"], VARIABLES)
        assert site.admin_token.get_secret_value() == auth_token
        assert site.submission == f"submission-{name}:587"
        provisioned = interpolate(environment(SERVICES[f"provision-{name}"])["SITE_USERS"], VARIABLES)
        assert provisioned == f"{user}={site.users[user].get_secret_value()}"
        assert (
            "lab" in SERVICES[f"auth-{name}"]["networks"]
            and "lab" in SERVICES[f"submission-{name}"]["networks"]
        )


def test_the_console_is_published_on_loopback_and_listens_where_it_is_published(
    settings: ConsoleSettings,
) -> None:
    ports = published_ports(SERVICES["console"])
    # Beside the native lab's console (127.0.0.1:8025), as the sites' ports are beside the native lab's.
    assert ports == [f"127.0.0.1:18025:{settings.port}"]
    # A lab default overridable from .env, like the other secrets, so the lab-info file can give it to the
    # browser tests (infra/docker/compose_lab_info.py); the sites' admin tokens log in too.
    assert settings.password is not None
    assert settings.password.get_secret_value() == VARIABLES["CONSOLE_PASSWORD"]


def test_the_image_holds_the_console() -> None:
    dockerfile = (ROOT / "infra" / "docker" / "Dockerfile").read_text()
    assert "COPY yubin ./yubin" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "!yubin/" in ignored, "the build context must include yubin/ (the console's code and pages)"
