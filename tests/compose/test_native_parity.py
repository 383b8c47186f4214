"""The compose lab runs every service with the settings the native lab gives it (yubin/lab/processes.py):
the same YUBIN_* variables, and the same values wherever the value is not an address, port or path.
"""

from pathlib import Path

import pytest

from tests.compose.compose_file import environment, load, setting_env_names, settings_class, yubin_services
from yubin.lab.config import lab_config
from yubin.lab.credentials import SiteCredentials
from yubin.lab.processes import role_env

SERVICES = load()["services"]
YUBIN = yubin_services(load())
ROLES = ("auth", "submission", "mx", "relay", "delivery", "pop3")

# Natively the lab's supervisor SIGKILLs 5 s after SIGTERM, so the lab shortens the shutdown grace; compose waits
# stop_grace_period (30 s) and the defaults (10 s) apply.
NATIVE_ONLY = {"YUBIN_SHUTDOWN_GRACE_S", "YUBIN_POP3_SHUTDOWN_GRACE_S"}
# The native lab has no front: its listeners take no PROXY headers (docs/security.md).
COMPOSE_ONLY = {"YUBIN_PROXY_PROTOCOL_FROM"}
SAME_VALUE = {
    "YUBIN_HOSTNAME",
    "YUBIN_LOG_LEVEL",
    "YUBIN_SMTP_ROLE",
    "YUBIN_ALLOW_PLAINTEXT_AUTH",
    "YUBIN_POP3_ALLOW_PLAINTEXT_AUTH",
}


@pytest.mark.parametrize("domain", ["alpha.test", "beta.test"])
@pytest.mark.parametrize("role", ROLES)
def test_same_settings_as_the_native_lab(role: str, domain: str, tmp_path: Path) -> None:
    config = lab_config(tmp_path, standard_ports=True)
    site = config.site(domain)
    native = role_env(config, site, role, SiteCredentials("a" * 32, "s" * 32))
    name = f"{role}-{site.name}"
    compose = environment(SERVICES[name])
    real = setting_env_names(settings_class(YUBIN[name]))
    native_settings = {key for key in native if key in real} - NATIVE_ONLY
    assert native_settings == set(compose) - COMPOSE_ONLY, (
        f"{name}: compose and native lab give different settings"
    )
    for key in SAME_VALUE & native_settings:
        assert compose[key] == native[key], f"{name}: {key}"
