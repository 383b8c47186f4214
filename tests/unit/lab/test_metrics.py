"""The lab's metrics: a port per process (replicas included), its URL in the lab info, the same port in
the process's settings, and a Prometheus configuration that Debian's promtool accepts."""

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.fixtures.binaries import require_binary
from yubin.lab import prometheus
from yubin.lab.config import METRICS_ROLES, lab_config, metrics_key, with_free_ports
from yubin.lab.credentials import load_or_create
from yubin.lab.info import build_info
from yubin.lab.processes import ROLES, build_processes


def test_the_metrics_roles_are_the_lab_roles() -> None:
    assert METRICS_ROLES == tuple(role.name for role in ROLES)


@pytest.mark.parametrize("free", [False, True])
def test_every_process_has_its_own_port(tmp_path: Path, free: bool) -> None:
    config = lab_config(tmp_path, standard_ports=False)
    if free:
        config = with_free_ports(config)
    addresses = [
        (site.address, config.metrics_port(site, role, replica))
        for site in config.sites
        for role in METRICS_ROLES
        for replica in (0, 1, 2)
    ]
    assert len(set(addresses)) == len(addresses)
    listens = {(site.address, port) for site in config.sites for port in vars(site.ports).values()}
    assert not listens & set(addresses)


def test_fixed_ports_are_the_documented_ones(tmp_path: Path) -> None:
    config = lab_config(tmp_path, standard_ports=True)
    alpha = config.site("alpha.test")
    assert config.metrics_url(alpha, "auth") == "http://127.0.3.10:9801/metrics"
    assert config.metrics_port(alpha, "pop3") == 9806
    assert config.metrics_port(alpha, "relay", replica=1) == 9814


def test_info_lists_every_process_and_each_serves_where_the_info_says(tmp_path: Path) -> None:
    config = with_free_ports(lab_config(tmp_path, standard_ports=False))
    credentials = load_or_create(config)
    info = build_info(config, credentials)
    assert set(info["metrics"]) == {f"{d}/{r}" for d in ("alpha.test", "beta.test") for r in METRICS_ROLES}
    assert "prometheus" not in info
    services = [spec for spec in build_processes(config, credentials) if spec.role in METRICS_ROLES]
    assert len(services) == len(info["metrics"])
    for spec in services:
        assert spec.site is not None and spec.role is not None and spec.metrics is not None
        host, port = spec.metrics
        assert (spec.env["YUBIN_METRICS_HOST"], int(spec.env["YUBIN_METRICS_PORT"])) == (host, port)
        assert info["metrics"][metrics_key(spec.site, spec.role)] == f"http://{host}:{port}/metrics"


def test_prometheus_runs_only_when_asked_and_scrapes_every_process(tmp_path: Path) -> None:
    plain = lab_config(tmp_path)
    assert "prometheus" not in [s.name for s in build_processes(plain, load_or_create(plain))]
    config = with_free_ports(lab_config(tmp_path, standard_ports=False, prometheus=True))
    credentials = load_or_create(config)
    info = build_info(config, credentials)
    [spec] = [s for s in build_processes(config, credentials) if s.name == "prometheus"]
    assert spec.listens is not None and spec.listens[0] == "127.0.0.1"  # loopback only
    assert info["prometheus"] == f"http://127.0.0.1:{spec.listens[1]}"
    assert f"--web.listen-address=127.0.0.1:{spec.listens[1]}" in spec.argv
    assert f"--storage.tsdb.path={tmp_path.resolve() / 'prometheus' / 'data'}" in spec.argv

    path = prometheus.write_config(config)
    [job] = yaml.safe_load(path.read_text())["scrape_configs"]
    scraped = {
        f"http://{target}/metrics": (group["labels"]["site"], group["labels"]["role"])
        for group in job["static_configs"]
        for target in group["targets"]
    }
    assert {url: f"{site}/{role}" for url, (site, role) in scraped.items()} == {
        url: key for key, url in info["metrics"].items()
    }
    promtool = require_binary("promtool", "prometheus")
    checked = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
