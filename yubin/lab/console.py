"""The lab's console process (`python -m yubin.console`, docs/console.md): its settings and its password.

The console password is generated once and kept in `<lab dir>/console.json` (mode 0600) beside the
sites' credentials; the console's server gets each site's admin API, admin token, submission address and
users from the lab's credentials, so the browser never needs them, and every process's /metrics (the map's
rates).
"""

import json
import os
import secrets
import sys
from typing import Any

from yubin.lab.config import LabConfig, metrics_key
from yubin.lab.credentials import SiteCredentials

CONSOLE_FILE = "console.json"


def console_url(config: LabConfig) -> str:
    return f"http://{config.console_address}:{config.console_port}/"


def console_password(config: LabConfig) -> str:
    """The lab's console password, made on first use."""
    path = config.lab_dir / CONSOLE_FILE
    stored = json.loads(path.read_text()) if path.exists() else {}
    password = stored.get("password")
    if not password:
        password = secrets.token_urlsafe(12)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"password": password}, out)
        tmp.replace(path)
    return password


def console_sites(config: LabConfig, credentials: dict[str, SiteCredentials]) -> dict[str, Any]:
    return {
        site.domain: {
            "admin": site.admin_url,
            "admin_token": credentials[site.domain].admin_token,
            "submission": f"{site.address}:{site.ports.submission}",
            "users": dict(credentials[site.domain].users),
        }
        for site in config.sites
    }


def console_metrics(config: LabConfig) -> dict[str, str]:
    """Every process's /metrics, as `lab info` lists them: the map's rates and queue depths come from them."""
    return {
        metrics_key(site.domain, role, replica): config.metrics_url(site, role, replica)
        for site, role, replica in config.metrics_processes()
    }


def console_env(config: LabConfig, credentials: dict[str, SiteCredentials]) -> dict[str, str]:
    return {
        "YUBIN_CONSOLE_HOST": config.console_address,
        "YUBIN_CONSOLE_PORT": str(config.console_port),
        "YUBIN_CONSOLE_PASSWORD": console_password(config),
        "YUBIN_CONSOLE_SITES": json.dumps(console_sites(config, credentials)),
        "YUBIN_CONSOLE_METRICS": json.dumps(console_metrics(config)),
        "YUBIN_CONSOLE_LOG_LEVEL": "INFO",
    }


def console_argv() -> tuple[str, ...]:
    return (sys.executable, "-m", "yubin.console")
