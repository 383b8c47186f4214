"""Every process of the lab (NSD, a Redis per site, each service of each site) with its command and settings.

This list is the single description of the lab: the supervisor runs it (`make lab`), `procfile.py` writes
it down for reading, the end-to-end tests run the same list under their own harness (they kill and restart
single services at chosen moments), and the docker compose lab uses the same settings. Environment variable names are exactly the fields of
each service's settings class (`shared/config/<service>.py`); `tests/unit/lab` checks that.
"""

import importlib
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pydantic_settings import BaseSettings

from yubin.lab import ha, nsd, prometheus
from yubin.lab.config import PROMETHEUS_ADDRESS, ROOT, LabConfig, Site
from yubin.lab.console import console_argv, console_env
from yubin.lab.credentials import SiteCredentials
from yubin.lab.replicas import check_replicas, replica_names

REDIS_CONF = ROOT / "infra" / "redis" / "redis.conf"
ENV_PREFIX = "YUBIN_"
# The supervisor sends SIGKILL 5 s after SIGTERM (RestartPolicy.stop_grace_s): sessions get less than
# that to finish, so they end cleanly.
SHUTDOWN_GRACE_S = "4"


@dataclass(frozen=True)
class Role:
    """A kind of Yubin process: its module and the module of its settings class."""

    name: str
    module: str
    settings_module: str


ROLES = (
    Role("auth", "services.auth", "shared.config.auth"),
    Role("submission", "services.submission", "shared.config.submission"),
    Role("mx", "services.submission", "shared.config.submission"),
    Role("relay", "services.relay", "shared.config.relay"),
    Role("delivery", "services.delivery", "shared.config.delivery"),
    Role("pop3", "services.pop3", "shared.config.pop3"),
)


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    site: str | None = None
    role: str | None = None
    listens: tuple[str, int] | None = None
    """Where the process accepts connections once it is ready (None: it only consumes)."""
    metrics: tuple[str, int] | None = None
    """Where it serves Prometheus metrics (YUBIN_METRICS_HOST/PORT)."""


class UnknownSetting(ValueError):
    pass


def settings_class(role: Role) -> type[BaseSettings]:
    """The one BaseSettings subclass defined in the role's settings module."""
    module = importlib.import_module(role.settings_module)
    classes = [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, BaseSettings) and value.__module__ == module.__name__
    ]
    if len(classes) != 1:
        raise RuntimeError(
            f"{role.settings_module} should define exactly one settings class, found {classes}"
        )
    return classes[0]


def setting_names(role: Role) -> set[str]:
    return {ENV_PREFIX + name.upper() for name in settings_class(role).model_fields}


def binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")
    if found is None:
        raise FileNotFoundError(f"'{name}' is not installed (Debian package: {name.split('-')[0]})")
    return found


def role_env(config: LabConfig, site: Site, role: str, creds: SiteCredentials) -> dict[str, str]:
    """The settings of one service of one site (before `config.settings` overrides)."""
    common = {
        "YUBIN_REDIS_URL": site.redis_url,
        "YUBIN_HOSTNAME": site.mx_host,
        "YUBIN_LOG_LEVEL": "INFO",
        **ha.service_env(config, site),
        "YUBIN_METRICS_HOST": site.address,
        "YUBIN_METRICS_PORT": str(config.metrics_port(site, role)),
    }
    auth_client = {"YUBIN_AUTH_URL": site.admin_url, "YUBIN_SERVICE_TOKEN": creds.service_token}
    mail_root = {"YUBIN_MAIL_ROOT": str(config.mail_root(site))}
    if role == "auth":
        return {
            **common,
            "YUBIN_ADMIN_TOKEN": creds.admin_token,
            "YUBIN_SERVICE_TOKEN": creds.service_token,
            "YUBIN_AUTH_HOST": site.address,
            "YUBIN_AUTH_PORT": str(site.ports.admin),
        }
    if role in ("submission", "mx"):
        port = site.ports.submission if role == "submission" else site.ports.mx
        return {
            **common,
            **auth_client,
            "YUBIN_SMTP_ROLE": role,
            "YUBIN_SMTP_HOST": site.address,
            "YUBIN_SMTP_PORT": str(port),
            "YUBIN_TLS_CERT_FILE": str(config.cert_file),
            "YUBIN_TLS_KEY_FILE": str(config.key_file),
            # The lab is reached over loopback only; plaintext AUTH keeps the swaks/curl examples short.
            "YUBIN_ALLOW_PLAINTEXT_AUTH": "true",
            "YUBIN_SHUTDOWN_GRACE_S": SHUTDOWN_GRACE_S,
        }
    if role == "relay":
        peer = config.peer(site)
        return {
            **common,
            **auth_client,
            # The lab's resolver, which forwards to NSD and applies dns-servfail faults (docs/faults.md).
            "YUBIN_DNS_SERVER": f"{config.dns_address}:{config.resolver_port}",
            # With fixed ports both sites' MX listen on the same port; with free ports they differ, and
            # each relay connects to the MX port of the other site.
            "YUBIN_RELAY_PORT": str(peer.ports.mx),
            "YUBIN_RELAY_OWN_ADDRESSES": site.address,
        }
    if role == "delivery":
        return {**common, **auth_client, **mail_root}
    if role == "pop3":
        return {
            **common,
            **auth_client,
            **mail_root,
            "YUBIN_POP3_HOST": site.address,
            "YUBIN_POP3_PORT": str(site.ports.pop3),
            "YUBIN_POP3_TLS_CERT": str(config.cert_file),
            "YUBIN_POP3_TLS_KEY": str(config.key_file),
            "YUBIN_POP3_ALLOW_PLAINTEXT_AUTH": "true",
            "YUBIN_POP3_SHUTDOWN_GRACE_S": SHUTDOWN_GRACE_S,
        }
    raise ValueError(role)


def apply_overrides(config: LabConfig, role: Role, env: dict[str, str]) -> dict[str, str]:
    """`config.settings` go to every service whose settings class has them."""
    try:
        names = setting_names(role)
    except ModuleNotFoundError:
        return env
    return {**env, **{key: value for key, value in config.settings.items() if key in names}}


def check_overrides(config: LabConfig) -> None:
    """Refuse an override no service knows: a typo must not silently leave the default in place."""
    known: set[str] = set()
    for role in ROLES:
        try:
            known |= setting_names(role)
        except ModuleNotFoundError:
            continue
    unknown = sorted(set(config.settings) - known)
    if unknown:
        raise UnknownSetting(f"no Yubin service has the setting(s): {', '.join(unknown)}")


def nsd_config(config: LabConfig, zones_dir: Path) -> str:
    """NSD serving the project's zone files on the lab's DNS address."""
    return nsd.nsd_config(config.dns_dir, zones_dir, config.dns_address, config.dns_port)


def build_processes(config: LabConfig, credentials: dict[str, SiteCredentials]) -> list[ProcessSpec]:
    check_replicas(config.replicas)
    specs = [
        ProcessSpec(
            "dns",
            (binary("nsd"), "-d", "-c", str(config.dns_dir / "nsd.conf")),
            listens=(config.dns_address, config.dns_port),
        ),
        ProcessSpec(
            "resolver",
            (
                sys.executable,
                "-m",
                "yubin.lab.dns_front",
                "--listen",
                f"{config.dns_address}:{config.resolver_port}",
                "--upstream",
                f"{config.dns_address}:{config.dns_port}",
                *(arg for site in config.sites for arg in ("--site", f"{site.domain}={site.redis_url}")),
            ),
            listens=(config.dns_address, config.resolver_port),
        ),
    ]
    for site in config.sites:
        if config.ha_ports:
            for process in ha.redis_processes(config, site, binary("redis-server")):
                specs.append(ProcessSpec(**process, site=site.domain, role="redis"))
            continue
        redis_dir = config.site_dir(site) / "redis"
        specs.append(
            ProcessSpec(
                f"{site.name}-redis",
                (
                    binary("redis-server"),
                    str(REDIS_CONF),
                    "--bind",
                    site.address,
                    "--port",
                    str(site.ports.redis),
                    "--dir",
                    str(redis_dir),
                    "--daemonize",
                    "no",
                ),
                site=site.domain,
                role="redis",
                listens=(site.address, site.ports.redis),
            )
        )
    for site in config.sites:
        for role in ROLES:
            env = role_env(config, site, role.name, credentials[site.domain])
            if role.name == "relay":
                # Native only: all sites share the host's loopback, so the relay binds to its site's
                # address (the peer's Received header names alpha, not 127.0.0.1); containers need not.
                env["YUBIN_RELAY_SOURCE_ADDRESS"] = site.address
            env = apply_overrides(config, role, env)
            # Replicas differ in name and metrics port: each consumer names itself (host and pid) in its group.
            names = replica_names(f"{site.name}-{role.name}", config.replica_count(role.name))
            for replica, name in enumerate(names):
                metrics_port = config.metrics_port(site, role.name, replica)
                specs.append(
                    ProcessSpec(
                        name,
                        (sys.executable, "-m", role.module),
                        env={**env, "YUBIN_METRICS_PORT": str(metrics_port)},
                        site=site.domain,
                        role=role.name,
                        listens=listen_address(site, role.name),
                        metrics=(site.address, metrics_port),
                    )
                )
    if config.prometheus_port is not None:
        specs.append(
            ProcessSpec(
                "prometheus",
                (binary("prometheus"), *prometheus.arguments(config)),
                listens=(PROMETHEUS_ADDRESS, config.prometheus_port),
            )
        )
    specs.append(
        ProcessSpec(
            "console",
            console_argv(),
            env=console_env(config, credentials),
            role="console",
            listens=(config.console_address, config.console_port),
        )
    )
    return specs


def listen_address(site: Site, role: str) -> tuple[str, int] | None:
    ports = {
        "auth": site.ports.admin,
        "submission": site.ports.submission,
        "mx": site.ports.mx,
        "pop3": site.ports.pop3,
    }
    return (site.address, ports[role]) if role in ports else None


def prepare_directories(config: LabConfig, zones_dir: Path) -> None:
    config.dns_dir.mkdir(parents=True, exist_ok=True)
    (config.dns_dir / "nsd.conf").write_text(nsd_config(config, zones_dir))
    for site in config.sites:
        (config.site_dir(site) / "redis").mkdir(parents=True, exist_ok=True)
        config.mail_root(site).mkdir(parents=True, exist_ok=True)
    if config.ha_ports:
        ha.prepare(config)
    if config.prometheus_port is not None:
        prometheus.write_config(config)
