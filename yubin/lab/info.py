"""`lab-info.json`: where a running lab's services are and how to log in, for people and programs.

The shape is a contract (issue 6) that `yubin --lab`, the end-to-end tests and the benchmark rely on, and
that the docker compose lab writes too:
`{"dns": "HOST:PORT", "sites": {"alpha.test": {"submission": "HOST:PORT", "mx": "HOST:PORT",
"pop3": "HOST:PORT", "admin": "http://HOST:PORT", "admin_token": "...", "users": {ADDRESS: PASSWORD}}}}`.
The native lab adds `redis` (and with `--ha` `redis_sentinels`), `mail_root`, `replicas` (processes per
scalable service: `--replicas`), `tls_cert`, `runner_pid`, `lab_dir`, `metrics` (each process's /metrics URL
by `alpha.test/relay`, `alpha.test/relay-1` for a second replica) and, with `--prometheus`, `prometheus`
(its URL); both labs add the web console's URL and password (`console`, `console_password`).
"""

import json
import os
from pathlib import Path
from typing import Any

from yubin.lab import ha
from yubin.lab.config import LabConfig, metrics_key
from yubin.lab.console import console_password, console_url
from yubin.lab.credentials import SiteCredentials
from yubin.lab.replicas import SCALABLE_ROLES


class LabNotRunning(RuntimeError):
    pass


def build_info(
    config: LabConfig, credentials: dict[str, SiteCredentials], runner_pid: int | None = None
) -> dict[str, Any]:
    sites: dict[str, Any] = {}
    for site in config.sites:
        creds = credentials[site.domain]
        sites[site.domain] = {
            "submission": f"{site.address}:{site.ports.submission}",
            "mx": f"{site.address}:{site.ports.mx}",
            "pop3": f"{site.address}:{site.ports.pop3}",
            "admin": site.admin_url,
            "admin_token": creds.admin_token,
            "users": dict(creds.users),
            "redis": site.redis_url,
            "mail_root": str(config.mail_root(site)),
            "replicas": {role: config.replica_count(role) for role in SCALABLE_ROLES},
        }
        if config.ha_ports:
            sites[site.domain]["redis_sentinels"] = ha.sentinels_setting(config, site)
    info: dict[str, Any] = {
        "dns": f"{config.dns_address}:{config.dns_port}",
        "resolver": f"{config.dns_address}:{config.resolver_port}",
        "sites": sites,
        "tls_cert": str(config.cert_file),
        "lab_dir": str(config.lab_dir),
        "metrics": {
            metrics_key(site.domain, role, replica): config.metrics_url(site, role, replica)
            for site, role, replica in config.metrics_processes()
        },
        "console": console_url(config),
        "console_password": console_password(config),
    }
    if config.prometheus_url is not None:
        info["prometheus"] = config.prometheus_url
    if runner_pid is not None:
        info["runner_pid"] = runner_pid
    return info


def write_info(path: Path, info: dict[str, Any]) -> None:
    # Tokens and passwords inside: readable by the owner only; written whole, then renamed into place.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(info, out, indent=2)
        out.write("\n")
    tmp.replace(path)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_info(path: Path, *, require_running: bool = True) -> dict[str, Any]:
    """The info of the lab whose `lab-info.json` is at `path`; LabNotRunning if it is not up."""
    if not path.exists():
        raise LabNotRunning(f"no lab info at {path}: start the lab with `make lab` (or `yubin lab up`)")
    try:
        info = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise LabNotRunning(f"cannot read {path}: {exc}") from exc
    if require_running and info.get("stopped"):
        raise LabNotRunning(
            f"the lab in {path.parent} is stopped: start it with `make lab` (or `yubin lab up`)"
        )
    pid = info.get("runner_pid")
    if require_running and pid is not None and not pid_alive(int(pid)):
        raise LabNotRunning(f"the lab in {path.parent} is not running (its runner, pid {pid}, is gone)")
    return info
