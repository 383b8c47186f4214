"""The compose lab's Prometheus (no Docker needed): it scrapes every Yubin service where that service
serves its metrics, over a network both share, with a configuration Debian's promtool accepts."""

import subprocess

import yaml

from tests.compose.compose_file import ROOT, environment, load, yubin_services
from tests.fixtures.binaries import require_binary

COMPOSE = load()
SERVICES = COMPOSE["services"]
CONFIG = ROOT / "infra" / "prometheus" / "compose.yml"


def mounted_config() -> str:
    [source] = [v.split(":")[0] for v in SERVICES["prometheus"]["volumes"] if v.endswith("prometheus.yml:ro")]
    return source


def test_promtool_accepts_the_configuration() -> None:
    assert (ROOT / mounted_config()).resolve() == CONFIG
    promtool = require_binary("promtool", "prometheus")
    checked = subprocess.run([promtool, "check", "config", str(CONFIG)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_yubin_service_is_scraped_on_its_metrics_port_over_the_metrics_network() -> None:
    [job] = yaml.safe_load(CONFIG.read_text())["scrape_configs"]
    [discovery] = job["dns_sd_configs"]
    services = yubin_services(COMPOSE)
    assert set(discovery["names"]) == set(services)
    assert "metrics" in SERVICES["prometheus"]["networks"]
    assert COMPOSE["networks"]["metrics"]["internal"] is True
    for name in services:
        env = environment(SERVICES[name])
        assert env["YUBIN_METRICS_HOST"] == "0.0.0.0", name
        assert int(env["YUBIN_METRICS_PORT"]) == discovery["port"], name
        networks = SERVICES[name]["networks"]
        assert "metrics" in networks, f"{name} is not on the metrics network"


def test_prometheus_is_published_on_loopback_only_and_keeps_its_data() -> None:
    prometheus = SERVICES["prometheus"]
    assert prometheus["ports"] == ["127.0.0.1:19090:9090"]
    assert "prometheus-data:/prometheus" in prometheus["volumes"]
