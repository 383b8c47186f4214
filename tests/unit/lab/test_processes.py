"""The lab's process list: settings names, ports, the Procfile written for reading."""

import shlex
from pathlib import Path

import pytest

from yubin.lab.config import lab_config, with_free_ports, zone_addresses
from yubin.lab.credentials import load_or_create
from yubin.lab.processes import ROLES, UnknownSetting, build_processes, check_overrides, setting_names
from yubin.lab.procfile import render


@pytest.fixture
def config(tmp_path: Path):
    return lab_config(tmp_path / "lab", standard_ports=False)


def test_every_environment_variable_is_a_setting_of_its_service(config) -> None:
    specs = build_processes(config, load_or_create(config))
    roles = {role.name: role for role in ROLES}
    checked = 0
    for spec in specs:
        if spec.role in roles:
            unknown = set(spec.env) - setting_names(roles[spec.role])
            assert not unknown, f"{spec.name}: {sorted(unknown)} are not settings of {spec.role}"
            checked += 1
    assert checked == 2 * len(ROLES)


def test_sites_use_the_addresses_of_the_zone_files(config) -> None:
    zones = zone_addresses()
    assert [(s.domain, s.address) for s in config.sites] == [
        ("alpha.test", zones["mx.alpha.test"]),
        ("beta.test", zones["mx.beta.test"]),
    ]
    assert config.dns_address == zones["ns.alpha.test"] == "127.0.3.53"


def test_each_relay_connects_to_the_other_sites_mx_port(config) -> None:
    free = with_free_ports(config)
    alpha, beta = free.sites
    assert alpha.ports.mx != beta.ports.mx
    env = {spec.name: spec.env for spec in build_processes(free, load_or_create(free))}
    assert env["alpha-relay"]["YUBIN_RELAY_PORT"] == str(beta.ports.mx)
    assert env["beta-relay"]["YUBIN_RELAY_PORT"] == str(alpha.ports.mx)
    assert env["alpha-relay"]["YUBIN_DNS_SERVER"] == f"127.0.3.53:{free.resolver_port}"


def test_free_ports_are_distinct_within_a_site(config) -> None:
    for site in with_free_ports(config).sites:
        ports = list(vars(site.ports).values())
        assert len(set(ports)) == len(ports)


def test_standard_ports_as_root(tmp_path: Path) -> None:
    site = lab_config(tmp_path, standard_ports=True).sites[0]
    assert (site.ports.submission, site.ports.mx, site.ports.pop3) == (587, 25, 110)


def test_overrides_go_only_to_services_that_have_the_setting(tmp_path: Path) -> None:
    config = lab_config(tmp_path, standard_ports=False, settings={"YUBIN_RELAY_RETRY_SCHEDULE_S": "1,2"})
    check_overrides(config)
    env = {spec.name: spec.env for spec in build_processes(config, load_or_create(config))}
    assert env["alpha-relay"]["YUBIN_RELAY_RETRY_SCHEDULE_S"] == "1,2"
    assert "YUBIN_RELAY_RETRY_SCHEDULE_S" not in env["alpha-delivery"]


def test_an_unknown_override_is_refused(tmp_path: Path) -> None:
    config = lab_config(tmp_path, standard_ports=False, settings={"YUBIN_RELAY_RETRY_SCHEDUL": "1"})
    with pytest.raises(UnknownSetting, match="YUBIN_RELAY_RETRY_SCHEDUL"):
        check_overrides(config)


def test_procfile_has_each_process_as_a_shell_line_with_its_settings(config) -> None:
    specs = build_processes(config, load_or_create(config))
    lines = [line for line in render(specs).splitlines() if line and not line.startswith("#")]
    parsed = {name: shlex.split(command) for name, _, command in (line.partition(": ") for line in lines)}
    assert list(parsed) == [spec.name for spec in specs]
    relay = parsed["alpha-relay"]
    assert relay[:2] == ["exec", "env"] and relay[-2:] == ["-m", "services.relay"]
    assert "YUBIN_SMTP_ROLE=mx" in parsed["beta-mx"]
