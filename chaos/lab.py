"""The chaos run's own native lab: `yubin lab up --free-ports` in a temporary directory, with short retry
timers, and its processes found by name in the supervisor's state file (`processes.json`)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from yubin.lab.config import ROOT
from yubin.lab.info import pid_alive
from yubin.lab.provision import ensure_user

# Short timers so deferred mail is retried, and a dead consumer's entries reclaimed, within the run.
CHAOS_SETTINGS = {
    "YUBIN_RELAY_RETRY_SCHEDULE_S": "1,2,4",
    "YUBIN_RELAY_SCHEDULER_MAX_SLEEP_S": "0.5",
    "YUBIN_RELAY_CONNECT_TIMEOUT_S": "3",
    "YUBIN_RELAY_COMMAND_TIMEOUT_S": "10",
    "YUBIN_DNS_TIMEOUT_S": "2",
    # A handler that fails (auth service or Redis down) leaves its entry pending; it is retried after the
    # claim idle time and dead-lettered after YUBIN_BUS_MAX_DELIVERIES (5) tries: 5 x 5 s outlasts a
    # restart of the auth service on a loaded machine (10-12 s seen). With 2 s, seed 101 dead-lettered
    # 23 relay entries while alpha's auth service restarted (docs/chaos.md).
    "YUBIN_BUS_CLAIM_IDLE_MS": "5000",
    "YUBIN_BUS_BLOCK_MS": "500",
    "YUBIN_DELIVERY_RETRY_DELAYS_S": "[1, 2, 4]",
    "YUBIN_DELIVERY_SCHEDULER_POLL_S": "0.5",
    # Every sender and POP3 poller logs in again after a fault: cheaper hashes keep that from dominating.
    "YUBIN_AUTH_ARGON2_TIME_COST": "1",
    "YUBIN_AUTH_ARGON2_MEMORY_KIB": "8192",
}


class ChaosLab:
    def __init__(self, lab_dir: Path, settings: dict[str, str] | None = None) -> None:
        self.lab_dir = lab_dir
        self.settings = {**CHAOS_SETTINGS, **(settings or {})}
        self.runner: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}

    def start(self, timeout: float = 180.0) -> dict[str, Any]:
        sets = [arg for key, value in self.settings.items() for arg in ("--set", f"{key}={value}")]
        self.lab_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable,
            "-m",
            "yubin.cli",
            "lab",
            "up",
            "--free-ports",
            "--lab-dir",
            str(self.lab_dir),
        ]
        with (self.lab_dir / "runner.out").open("ab") as out:
            self.runner = subprocess.Popen(
                [*argv, *sets],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        info_file = self.lab_dir / "lab-info.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.runner.poll() is not None:
                raise RuntimeError(
                    f"the lab exited ({self.runner.returncode}):\n"
                    + (self.lab_dir / "runner.out").read_text(errors="replace")[-3000:]
                )
            if info_file.exists():
                info = json.loads(info_file.read_text())
                if info.get("runner_pid") == self.runner.pid:
                    self.info = info
                    return info
            time.sleep(0.2)
        raise RuntimeError(f"the lab did not come up within {timeout:.0f} s")

    def add_users(self, users: dict[str, str]) -> None:
        """More mailboxes than the demo ones, through each site's admin API."""
        for address, password in users.items():
            site = self.info["sites"][address.rpartition("@")[2]]
            headers = {"Authorization": f"Bearer {site['admin_token']}"}
            with httpx.Client(base_url=site["admin"], headers=headers, timeout=30) as client:
                ensure_user(client, address, password)
            site["users"][address] = password

    def processes(self) -> dict[str, Any]:
        return json.loads((self.lab_dir / "processes.json").read_text())["processes"]

    def signal(self, name: str, signum: signal.Signals) -> int | None:
        """Send a signal to the process now running as `name`; its pid, or None if none runs."""
        pid = self.processes()[name]["pid"]
        if pid is None:
            return None
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            return None
        return pid

    def stop(self) -> None:
        if self.runner is None or self.runner.poll() is not None:
            return
        self.runner.send_signal(signal.SIGINT)
        try:
            self.runner.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.runner.kill()
            self.runner.wait()
            for process in self.processes().values():
                if process["pid"] is not None and pid_alive(process["pid"]):
                    os.kill(process["pid"], signal.SIGKILL)
