"""Static checks of docker-compose.yml and its CI override (no Docker needed; part of `make test`).

Every service command is a real entry point, every YUBIN_* variable a real setting of that service (and
the values parse), every mounted path exists, the scalable services can scale, and only loopback ports
are published.
"""

import importlib.util
import ipaddress
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.compose.compose_file import (
    APP_DIR,
    CI_OVERRIDE,
    COMPOSE_FILE,
    ENV_PREFIX,
    ROOT,
    environment,
    interpolate,
    load,
    python_module,
    setting_env_names,
    settings_class,
    yubin_services,
)

COMPOSE = load()
CI = load(CI_OVERRIDE)
DOCKERFILE = ROOT / "infra" / "docker" / "Dockerfile"
HAPROXY_CFG = ROOT / "infra" / "haproxy" / "haproxy.cfg"
SITES = ("alpha", "beta")
SCALABLE = ("auth", "relay", "delivery", "pop3")
EVERY_SERVICE = ("auth", "submission", "mx", "relay", "delivery", "pop3")
# Values for the ${VAR:-lab default} secrets a .env may set (see infra/docker/gen-env.sh).
SECRETS = {
    name: f"{name.lower()}-0123456789abcdef"
    for name in (
        "ALPHA_ADMIN_TOKEN", "ALPHA_SERVICE_TOKEN", "BETA_ADMIN_TOKEN", "BETA_SERVICE_TOKEN",
        "ALICE_PASSWORD", "BOB_PASSWORD", "CONSOLE_PASSWORD",
    )
}  # fmt: skip
# Not secrets: the `ha` profile's switches, set by infra/redis/compose-ha.env (docs/ha.md); empty/0 by default.
HA_ENV_FILE = ROOT / "infra" / "redis" / "compose-ha.env"
HA_SWITCHES = {"ALPHA_REDIS_SENTINELS": "", "BETA_REDIS_SENTINELS": "", "REDIS_MIN_REPLICAS_TO_WRITE": "0"}
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
YUBIN = yubin_services(COMPOSE)


def test_every_service_of_each_site_runs_from_the_one_dockerfile() -> None:
    expected = {f"{role}-{site}" for role in EVERY_SERVICE for site in SITES}
    assert expected <= set(YUBIN)
    for name, service in SERVICES.items():
        if "build" in service:
            assert service["build"] == {"context": ".", "dockerfile": "infra/docker/Dockerfile"}, name
            assert service["image"] == SERVICES["auth-alpha"]["image"], name
    assert re.search(r"^FROM python:3\.11-slim$", DOCKERFILE.read_text(), re.MULTILINE)


@pytest.mark.parametrize("name", sorted(YUBIN))
def test_command_is_a_real_entry_point(name: str) -> None:
    module = YUBIN[name]
    assert importlib.util.find_spec(module) is not None, f"{name}: no module {module}"
    assert importlib.util.find_spec(f"{module}.__main__") is not None, f"{name}: {module} has no __main__"


def image_path(path: str) -> Path:
    """The repository file that the Dockerfile copies to `path` under /app."""
    assert path.startswith(APP_DIR + "/"), path
    return ROOT / path.removeprefix(APP_DIR + "/")


def test_scripts_run_in_the_image_exist_and_are_copied_into_it() -> None:
    dockerfile = DOCKERFILE.read_text()
    scripts = []
    for name, service in SERVICES.items():
        command = service.get("command") or []
        if "build" in service and python_module(service) is None:
            assert command[0] in ("python", "sh"), name
            if command[1] == "-m":  # a module with arguments (the resolver): its package is in the image
                assert importlib.util.find_spec(command[2]) is not None, name
                assert f"COPY {command[2].split('.')[0]} " in dockerfile, name
                continue
            scripts.append(command[1])
        health = service.get("healthcheck", {}).get("test", [])
        if health[:5] == ["CMD", "timeout", "-s", "KILL", "5"]:
            health = ["CMD", *health[5:]]
        if health[:2] == ["CMD", "python"]:
            scripts.append(health[2])
    assert scripts
    for script in scripts:
        assert image_path(script).is_file(), script
        assert script.removeprefix(APP_DIR + "/") in dockerfile, f"the Dockerfile does not copy {script}"


@pytest.mark.parametrize("name", sorted(YUBIN))
def test_environment_is_real_settings_that_parse(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cls = settings_class(YUBIN[name])
    env = {
        key: interpolate(value, {**SECRETS, **HA_SWITCHES})
        for key, value in environment(SERVICES[name]).items()
    }
    unknown = {key for key in env if key.startswith(ENV_PREFIX)} - setting_env_names(cls)
    assert not unknown, f"{name}: {sorted(unknown)} are not settings of {cls.__name__}"
    assert all(key.startswith(ENV_PREFIX) for key in env), f"{name}: a Yubin service reads only YUBIN_*"
    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    cls()  # required settings present, every value valid


def test_sites_are_wired_to_their_own_redis_auth_and_mail() -> None:
    for name in YUBIN:
        site = name.rsplit("-", 1)[1]
        env = environment(SERVICES[name])
        assert env["YUBIN_REDIS_URL"] == f"redis://redis-{site}:6379/0", name
        assert env.get("YUBIN_AUTH_URL", f"http://auth-{site}:8080") == f"http://auth-{site}:8080", name
        assert env["YUBIN_HOSTNAME"] == f"mx.{site}.test", name
        mounts = {v.split(":")[1]: v.split(":")[0] for v in SERVICES[name].get("volumes", [])}
        if "YUBIN_MAIL_ROOT" in env:
            assert mounts[env["YUBIN_MAIL_ROOT"]] == f"{site}-mail", name


def test_smtp_roles_and_relay_dns() -> None:
    for site in SITES:
        assert environment(SERVICES[f"submission-{site}"])["YUBIN_SMTP_ROLE"] == "submission"
        assert environment(SERVICES[f"mx-{site}"])["YUBIN_SMTP_ROLE"] == "mx"
        relay = environment(SERVICES[f"relay-{site}"])
        # The relays ask the resolver, where dns-servfail faults apply; it asks CoreDNS (next test).
        resolver_ip = SERVICES["resolver"]["networks"]["lab"]["ipv4_address"]
        assert relay["YUBIN_DNS_SERVER"] == f"{resolver_ip}:53"
        assert SERVICES[f"relay-{site}"]["depends_on"]["resolver"] == {"condition": "service_healthy"}
        assert relay["YUBIN_RELAY_OWN_ADDRESSES"] == SERVICES[f"mx-{site}"]["networks"]["lab"]["ipv4_address"]


def option_values(command: list[str], option: str) -> list[str]:
    return [command[i + 1] for i, word in enumerate(command[:-1]) if word == option]


def test_the_resolver_forwards_to_coredns_and_reads_every_sites_faults() -> None:
    """As the native lab's `resolver` process (yubin/lab/processes.py): the DNS front in front of the
    authoritative server, with each site's Redis, the one the site's services use, for its faults."""
    resolver = SERVICES["resolver"]
    command = resolver["command"]
    assert command[:3] == ["python", "-m", "yubin.lab.dns_front"]
    coredns_ip = SERVICES["coredns"]["networks"]["lab"]["ipv4_address"]
    assert option_values(command, "--upstream") == [f"{coredns_ip}:53"]
    assert option_values(command, "--listen") == ["0.0.0.0:53"]
    sites = dict(value.split("=", 1) for value in option_values(command, "--site"))
    assert sites == {
        f"{site}.test": environment(SERVICES[f"auth-{site}"])["YUBIN_REDIS_URL"] for site in SITES
    }
    networks = resolver["networks"]
    assert set(networks) == {"lab", *SITES}
    assert ipaddress.ip_address(networks["lab"]["ipv4_address"]) != ipaddress.ip_address(coredns_ip)
    assert resolver["depends_on"]["coredns"] == {"condition": "service_started"}
    for site in SITES:
        assert resolver["depends_on"][f"redis-{site}"] == {"condition": "service_healthy"}


def bind_mounts(compose: dict[str, Any]) -> list[tuple[str, str]]:
    mounts = []
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []) if isinstance(service, dict) else []:
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                mounts.append((name, source))
    return mounts


def test_every_mounted_path_exists() -> None:
    mounts = bind_mounts(COMPOSE) + bind_mounts(CI)
    assert mounts
    for name, source in mounts:
        # Relative paths are relative to the project directory (the base file's), in the override too.
        assert (COMPOSE_FILE.parent / source).exists(), f"{name} mounts {source}, which does not exist"


def test_named_volumes_are_declared_for_redis_and_maildirs() -> None:
    declared = set(COMPOSE["volumes"])
    for site in SITES:
        assert f"{site}-redis:/data" in SERVICES[f"redis-{site}"]["volumes"]
        assert {f"{site}-redis", f"{site}-mail"} <= declared
    for service in SERVICES.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, volume


def test_redis_uses_the_project_config_with_aof() -> None:
    conf = (ROOT / "infra" / "redis" / "redis.conf").read_text()
    assert re.search(r"^appendonly yes$", conf, re.MULTILINE)
    for site in SITES:
        redis = SERVICES[f"redis-{site}"]
        assert re.fullmatch(r"redis:\d+\.\d+\.\d+-\w+", redis["image"]), "pin the redis image"
        conf_in_container = next(v.split(":")[1] for v in redis["volumes"] if v.endswith("redis.conf:ro"))
        assert redis["command"][:2] == ["redis-server", conf_in_container]


def published_ports(service: dict[str, Any]) -> list[str]:
    return [str(port) for port in service.get("ports", [])]


def test_ports_are_published_on_loopback_only() -> None:
    published = [port for service in SERVICES.values() for port in published_ports(service)]
    assert published
    for port in published:
        assert port.startswith("127.0.0.1:"), port


@pytest.mark.parametrize("role", SCALABLE)
def test_scalable_services_have_no_container_name_and_no_host_port(role: str) -> None:
    for site in SITES:
        service = SERVICES[f"{role}-{site}"]
        assert "container_name" not in service
        assert not published_ports(service)
        assert "ipv4_address" not in str(service.get("networks"))


def test_the_front_reaches_every_replica_of_auth_pop3_and_the_smtp_listeners() -> None:
    """HAProxy (`front`) publishes one port per site for the admin API, POP3, submission and MX, and its
    backends are the services by name (Docker's DNS resolves a scaled service's name to every replica)."""
    cfg = HAPROXY_CFG.read_text()
    binds = {int(port) for port in re.findall(r"^\s*bind :(\d+)$", cfg, re.MULTILINE)}
    published = {int(port.split(":")[1]) for port in published_ports(SERVICES["front"])}
    assert binds == published
    backends = set(re.findall(r"server-template \w+ \d+ ([\w-]+):(\d+)", cfg))
    assert backends == {
        (f"{role}-{site}", port)
        for site in SITES
        for role, port in (("auth", "8080"), ("pop3", "110"), ("submission", "587"), ("mx", "25"))
    }
    for service, _ in backends:
        assert "lab" in SERVICES[service]["networks"], f"{service} must share a network with front"


def test_the_listeners_behind_the_front_keep_their_host_ports() -> None:
    """Submission and MX moved behind the front; the host ports docs and tests use stayed the same."""
    front = {port.removeprefix("127.0.0.1:") for port in published_ports(SERVICES["front"])}
    for site, prefix in (("alpha", "10"), ("beta", "20")):
        for role, port in (("submission", "587"), ("mx", "025"), ("pop3", "110")):
            assert f"{prefix}{port}:{prefix}{port}" in front, (site, role)
            assert not published_ports(SERVICES[f"{role}-{site}"]), f"{role}-{site} is reached through front"


def test_the_front_passes_client_addresses_to_the_listeners_that_trust_only_it() -> None:
    """PROXY v2 (issue 13 §1): HAProxy sends it to POP3, submission and MX (not to the admin API, which
    speaks HTTP), and those listeners believe it from the front's fixed address and from nobody else, not
    the dynamic range the other containers (the other site's relay among them) get addresses from."""
    cfg = HAPROXY_CFG.read_text()
    for line in re.findall(r"^\s*server-template .*$", cfg, re.MULTILINE):
        service = re.search(r" ([\w-]+):\d+ ", line)
        assert service is not None, line
        behind = service.group(1).rsplit("-", 1)[0] in ("pop3", "submission", "mx")
        assert ("send-proxy-v2" in line.split()) == behind, line
    front = ipaddress.ip_address(SERVICES["front"]["networks"]["lab"]["ipv4_address"])
    ipam = COMPOSE["networks"]["lab"]["ipam"]["config"][0]
    dynamic = ipaddress.ip_network(ipam["ip_range"])
    others = {
        ipaddress.ip_address(s["networks"]["lab"]["ipv4_address"])
        for name, s in SERVICES.items()
        if name != "front"
        and isinstance(s.get("networks"), dict)
        and (s["networks"].get("lab") or {}).get("ipv4_address")
    }
    for name in YUBIN:
        trusted = environment(SERVICES[name]).get("YUBIN_PROXY_PROTOCOL_FROM")
        if name.rsplit("-", 1)[0] not in ("pop3", "submission", "mx"):
            assert trusted is None, name
            continue
        assert trusted is not None, f"{name} must take client addresses from front"
        networks = [ipaddress.ip_network(n.strip()) for n in trusted.split(",")]
        assert any(front in n for n in networks), name
        for network in networks:
            assert not network.overlaps(dynamic), (name, network)
            assert not any(address in network for address in others), (name, network)


def test_depends_on_waits_for_health() -> None:
    for name, service in SERVICES.items():
        for target, rule in (service.get("depends_on") or {}).items():
            assert target in SERVICES, (name, target)
            condition = rule["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[target], (
                    f"{name} waits for {target}, which has no healthcheck"
                )
            elif condition == "service_completed_successfully":
                assert SERVICES[target].get("restart") == "no", (name, target)
            else:
                # Only CoreDNS may be merely started: its image has nothing to run a healthcheck with.
                assert (condition, target) == ("service_started", "coredns"), (name, target)
    for name in YUBIN:
        assert "healthcheck" in SERVICES[name], name


def test_coredns_is_pinned_and_reads_the_corefile() -> None:
    coredns = SERVICES["coredns"]
    assert re.fullmatch(r"coredns/coredns:\d+\.\d+\.\d+", coredns["image"])
    assert "./infra/dns/Corefile:/etc/coredns/Corefile:ro" in coredns["volumes"]
    assert coredns["command"] == ["-conf", "/etc/coredns/Corefile"]


def test_fixed_addresses_are_outside_the_dynamic_range() -> None:
    ipam = COMPOSE["networks"]["lab"]["ipam"]["config"][0]
    subnet, dynamic = ipaddress.ip_network(ipam["subnet"]), ipaddress.ip_network(ipam["ip_range"])
    fixed = [
        ipaddress.ip_address(s["networks"]["lab"]["ipv4_address"])
        for s in SERVICES.values()
        if isinstance(s.get("networks"), dict) and (s["networks"].get("lab") or {}).get("ipv4_address")
    ]
    assert len(fixed) == 5  # CoreDNS, the resolver, the two MX servers and the front
    for address in fixed:
        assert address in subnet and address not in dynamic, address


def test_redis_is_reachable_from_its_own_site_only() -> None:
    for site in SITES:
        assert SERVICES[f"redis-{site}"]["networks"] == [site]
        assert COMPOSE["networks"][site]["internal"] is True
        for name, service in SERVICES.items():
            networks = service.get("networks") or []
            # The resolver reads every site's faults (docs/faults.md): the one exception.
            if site in networks and name != "resolver":
                assert name.endswith(f"-{site}"), f"{name} is on {site}'s network"


def test_ci_override_builds_offline_and_only_replaces_what_cannot_be_pulled() -> None:
    ci = CI["services"]
    assert set(ci) <= set(SERVICES)
    for name, service in SERVICES.items():
        if "build" in service:
            assert ci[name]["build"]["network"] == "host", name
            assert ci[name]["pull_policy"] == "never", name
        else:
            # Pulled images (coredns, redis, haproxy) get the locally built stand-in.
            assert ci[name]["image"] == "local/ci-servers:bookworm", name
            assert ci[name]["pull_policy"] == "never", name


def test_gen_env_makes_every_secret_compose_needs() -> None:
    needed = set(re.findall(r"\$\{(\w+):-", COMPOSE_FILE.read_text())) - set(HA_SWITCHES)
    assert needed == set(SECRETS)
    script = ROOT / "infra" / "docker" / "gen-env.sh"
    out = subprocess.run(["sh", str(script)], capture_output=True, text=True, check=True).stdout
    made = dict(line.split("=", 1) for line in out.splitlines() if line and not line.startswith("#"))
    assert set(made) == needed
    assert all(len(value) >= 16 for value in made.values())  # auth refuses shorter tokens
    assert len(set(made.values())) == len(made)


def test_lab_info_reads_the_ports_front_publishes() -> None:
    spec = importlib.util.spec_from_file_location(
        "compose_lab_info", ROOT / "infra" / "docker" / "compose_lab_info.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    front = {int(port.split(":")[1]) for port in published_ports(SERVICES["front"])}
    assert {port for ports in module.FRONT_PORTS.values() for port in ports.values()} == front


def test_lab_info_knows_the_compose_defaults() -> None:
    spec = importlib.util.spec_from_file_location(
        "compose_lab_info", ROOT / "infra" / "docker" / "compose_lab_info.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    defaults = dict(re.findall(r"\$\{(\w+):-([^}]*)\}", COMPOSE_FILE.read_text()))
    assert module.LAB_DEFAULTS == {name: defaults[name] for name in module.LAB_DEFAULTS}


def test_plain_docker_compose_up_needs_no_env_file() -> None:
    """`docker compose up` is the one command that starts the lab: every variable has a lab default."""
    text = COMPOSE_FILE.read_text()
    variables = re.findall(r"\$\{[^}]*\}", text)
    assert variables, "the secrets are expected to be overridable from .env"
    assert [v for v in variables if ":-" not in v] == []


def ha_env() -> dict[str, str]:
    lines = HA_ENV_FILE.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_the_ha_profile_sets_every_switch_and_nothing_else() -> None:
    assert set(ha_env()) == set(HA_SWITCHES)
    text = COMPOSE_FILE.read_text()
    for name in HA_SWITCHES:
        assert f"${{{name}:-" in text, name


@pytest.mark.parametrize("site", SITES)
def test_the_ha_profile_gives_each_site_a_replica_and_three_sentinels_on_its_own_network(site: str) -> None:
    env = ha_env()
    sentinels = env[f"{site.upper()}_REDIS_SENTINELS"].split(",")
    assert len(sentinels) == 3
    for address in sentinels:
        host, _, port = address.rpartition(":")
        assert SERVICES[host]["profiles"] == ["ha"] and SERVICES[host]["networks"] == [site], host
        assert port == "26379"
        assert f"redis-{site}/" in " ".join(SERVICES[host]["command"]), "monitors its own site's primary"
    replica = SERVICES[f"redis-replica-{site}"]
    assert replica["profiles"] == ["ha"] and replica["networks"] == [site]
    script = " ".join(replica["command"])
    assert (
        f"'replicaof redis-{site} 6379'" in script
        and "include /usr/local/etc/redis/replication.conf" in script
    )
    # Every Yubin service of the site reads the switch; the primary enforces min-replicas-to-write with it.
    for name in YUBIN:
        if name.endswith(f"-{site}"):
            assert (
                environment(SERVICES[name])["YUBIN_REDIS_SENTINELS"]
                == f"${{{site.upper()}_REDIS_SENTINELS:-}}"
            )
    assert "${REDIS_MIN_REPLICAS_TO_WRITE:-0}" in SERVICES[f"redis-{site}"]["command"]


def test_sentinel_conf_needs_two_sentinels_to_agree() -> None:
    conf = (ROOT / "infra" / "redis" / "sentinel.conf").read_text()
    assert re.search(r"^sentinel monitor yubin SITE_PRIMARY_HOST 6379 2$", conf, re.MULTILINE)
    replication = (ROOT / "infra" / "redis" / "replication.conf").read_text()
    assert re.search(r"^min-replicas-to-write 1$", replication, re.MULTILINE)
