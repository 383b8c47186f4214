"""Prometheus against the native lab: its configuration (from infra/prometheus/) and its command line.

Debian's `prometheus` scrapes every Yubin process's /metrics (the targets carry `site` and `role`
labels), listens on loopback only and keeps its data under <lab dir>/prometheus/data.
"""

import json
from pathlib import Path
from string import Template

from yubin.lab.config import PROMETHEUS_ADDRESS, ROOT, LabConfig

TEMPLATE = ROOT / "infra" / "prometheus" / "native.yml.template"
SCRAPE_INTERVAL = "5s"


def targets(config: LabConfig) -> list[dict]:
    """One static config per process: `host:port` of its /metrics, with its site and role."""
    return [
        {
            "targets": [f"{site.address}:{config.metrics_port(site, role, replica)}"],
            "labels": {"site": site.domain, "role": role, "replica": str(replica)},
        }
        for site, role, replica in config.metrics_processes()
    ]


def render(config: LabConfig, scrape_interval: str = SCRAPE_INTERVAL) -> str:
    # JSON is YAML: the target list goes in as one flow sequence, with every string quoted.
    return Template(TEMPLATE.read_text()).substitute(
        scrape_interval=scrape_interval, targets=json.dumps(targets(config))
    )


def config_file(config: LabConfig) -> Path:
    return config.prometheus_dir / "prometheus.yml"


def write_config(config: LabConfig, scrape_interval: str = SCRAPE_INTERVAL) -> Path:
    path = config_file(config)
    (config.prometheus_dir / "data").mkdir(parents=True, exist_ok=True)
    path.write_text(render(config, scrape_interval))
    return path


def arguments(config: LabConfig) -> tuple[str, ...]:
    return (
        f"--config.file={config_file(config)}",
        f"--storage.tsdb.path={config.prometheus_dir / 'data'}",
        f"--web.listen-address={PROMETHEUS_ADDRESS}:{config.prometheus_port}",
    )
