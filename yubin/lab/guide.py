"""What `yubin lab up` prints once the lab is ready: where everything is and how to send and fetch."""

import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from yubin.lab.config import LabConfig


def guide(config: LabConfig, info: dict[str, Any], log_path: Path | None) -> str:
    alpha, beta = (info["sites"][site.domain] for site in config.sites)
    alice, alice_pw = next(iter(alpha["users"].items()))
    bob, bob_pw = next(iter(beta["users"].items()))
    q = shlex.quote
    yubin = yubin_command()
    lines = ["", "Yubin lab is up (Ctrl-C stops it).", ""]
    lines.append(f"  {'site':<11} {'submission':<21} {'mx':<21} {'pop3':<21} admin API")
    for domain, site in info["sites"].items():
        lines.append(
            f"  {domain:<11} {site['submission']:<21} {site['mx']:<21} {site['pop3']:<21} {site['admin']}"
        )
    lines += [f"  {'dns':<11} {info['dns']}", ""]
    if info.get("console"):
        lines += [f"  Web console: {info['console']}   password {info.get('console_password', '')}", ""]
    for site in info["sites"].values():
        for address, password in site["users"].items():
            lines.append(f"  user {address:<20} password {password}")
    lines += [
        "",
        "Send and fetch with yubin:",
        f"  {yubin} send --lab --from {alice} --to {bob} --subject hello 'Hello Bob'",
        f"  {yubin} fetch --lab --user {bob}",
        f"  {yubin} trace --lab            # the latest steps of every message, both sites",
        "",
        "With swaks and curl:",
        f"  swaks --server {alpha['submission']} --auth-user {alice} --auth-password {q(alice_pw)} \\",
        f"        --from {alice} --to {bob}",
        f"  curl pop3://{beta['pop3']}/ --user {q(bob + ':' + bob_pw)}        # list",
        f"  curl pop3://{beta['pop3']}/1 --user {q(bob + ':' + bob_pw)}       # message 1",
        "",
        f"Lab directory: {config.lab_dir}   (lab info: {yubin} lab info --json)",
        f"TLS certificate (self-signed) for STARTTLS/STLS: {config.cert_file}",
    ]
    if "prometheus" in info:
        lines.append(f"Prometheus (scraping every process's /metrics): {info['prometheus']}")
    if log_path is not None:
        lines.append(f"Logs of every process: tail -f {log_path}")
    return "\n".join(lines) + "\n"


def yubin_command() -> str:
    """`yubin` if the shell finds this one, else its path (e.g. `.venv/bin/yubin` before activation)."""
    script = Path(sys.executable).parent / "yubin"
    if shutil.which("yubin") == str(script) or not script.exists():
        return "yubin"
    try:
        return os.path.relpath(script)
    except ValueError:
        return str(script)
