"""`yubin lab up` (what `make lab` runs): the supervisor brings both sites up and restarts a process killed
with SIGKILL (`yubin lab ps` counts it) while mail keeps flowing; Ctrl-C leaves no process behind; mail and
passwords survive a restart of the lab."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import Lab
from tests.e2e.mail import hostport, messages_with, token, wait_for, wait_for_message, yubin
from yubin.cli.errors import ExitCode
from yubin.lab.info import pid_alive

ALICE = "alice@alpha.test"
BOB = "bob@beta.test"
INFO_KEYS = {"submission", "mx", "pop3", "admin", "admin_token", "users"}


def start_lab(lab_dir: Path, *options: str, timeout: float = 90) -> tuple[subprocess.Popen, dict]:
    """`yubin lab up --free-ports` with `options`, once its lab-info names this runner."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "yubin.cli", "lab", "up", "--free-ports", "--lab-dir", str(lab_dir), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    info_file = lab_dir / "lab-info.json"

    def ready() -> dict | None:
        if proc.poll() is not None:
            raise AssertionError(f"yubin lab up exited {proc.returncode}: {proc.stdout.read().decode()}")
        if info_file.exists():
            info = json.loads(info_file.read_text())
            if info.get("runner_pid") == proc.pid:
                return info
        return None

    return proc, wait_for("the lab to come up", ready, timeout=timeout, every=0.2)


def ctrl_c(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    return proc.returncode, out.decode()


def started_pids(lab_dir: Path) -> list[int]:
    return [
        json.loads(line.removeprefix("lab | "))["pid"]
        for line in (lab_dir / "lab.log").read_text().splitlines()
        if line.startswith("lab | ") and '"event": "started"' in line
    ]


def lab_ps(lab_dir: Path) -> dict:
    shown = subprocess.run(
        [sys.executable, "-m", "yubin.cli", "lab", "ps", "--json", "--lab-dir", str(lab_dir)],
        capture_output=True,
        check=True,
    )
    return json.loads(shown.stdout)["processes"]


def kill_and_see_restarted(lab_dir: Path, names: list[str]) -> None:
    before = lab_ps(lab_dir)
    for name in names:
        os.kill(before[name]["pid"], signal.SIGKILL)

    def restarted() -> bool:
        now = lab_ps(lab_dir)
        return all(
            now[name]["restarts"] == before[name]["restarts"] + 1
            and now[name]["pid"] not in (None, before[name]["pid"])
            and now[name]["state"] == "running"
            for name in names
        )

    wait_for(f"{names} to be restarted", restarted, timeout=30, every=0.2)


def listening(address: str) -> bool:
    try:
        with socket.create_connection(hostport(address), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.native_only  # starts its own lab and sends it Ctrl-C
def test_lab_up_serves_mail_stops_cleanly_and_keeps_mail_across_restarts(tmp_path: Path) -> None:
    lab_dir = tmp_path / "lab"
    proc, info = start_lab(lab_dir)
    try:
        assert set(info) >= {"dns", "sites"} and re.fullmatch(r"127\.0\.3\.53:\d+", info["dns"])
        assert set(info["sites"]) == {"alpha.test", "beta.test"}
        for domain, address in (("alpha.test", "127.0.3.10"), ("beta.test", "127.0.3.20")):
            site = info["sites"][domain]
            assert set(site) >= INFO_KEYS
            assert site["submission"].startswith(address + ":") and site["admin"].startswith(
                f"http://{address}:"
            )
        shown = subprocess.run(
            [
                sys.executable,
                "-m",
                "yubin.cli",
                "lab",
                "info",
                "--json",
                "--lab-info",
                str(lab_dir / "lab-info.json"),
            ],
            capture_output=True,
            check=True,
        )
        assert json.loads(shown.stdout) == info

        lab = Lab(info, lab_dir / "lab-info.json", None)
        tag = token()
        yubin(lab, "send", "--lab", "--from", ALICE, "--to", BOB, "--subject", tag, "kept across restarts")
        wait_for_message(lab, BOB, tag)

        # A learner's kill -9: the lab goes on, the process comes back, mail flows through it again.
        kill_and_see_restarted(lab_dir, ["alpha-relay", "beta-mx", "beta-delivery", "alpha-redis"])
        after_kill = token()

        def sent() -> bool:
            # A Redis just restarted answers LOADING while it replays its AOF: the submission says 451
            # (exit TEMPORARY) and, like any client, we send again. Anything else is a failure.
            args = ("send", "--lab", "--from", ALICE, "--to", BOB, "--subject", after_kill, "after kill -9")
            result = yubin(lab, *args, check=False)
            assert result.returncode in (0, ExitCode.TEMPORARY), result.stderr
            return result.returncode == 0

        wait_for("the send after kill -9 to be accepted", sent, timeout=60, every=1)
        wait_for_message(lab, BOB, after_kill)
        table = yubin(lab, "lab", "ps", "--lab-dir", str(lab_dir)).stdout.decode()
        assert re.search(r"^alpha-relay +\d+ +running +1 .*killed by SIGKILL$", table, re.M), table
    finally:
        rc, out = ctrl_c(proc)
    assert rc == 0, out
    pids = started_pids(lab_dir)
    # NSD, the resolver, the web console, and per site: Redis + auth, submission, mx, relay, delivery, pop3;
    # and the 4 restarted
    assert len(pids) == 17 + 4
    assert not [pid for pid in pids if pid_alive(pid)], "processes left behind"
    assert not any(listening(site["submission"]) for site in info["sites"].values())
    with pytest.raises(AssertionError):
        yubin(lab, "lab", "info")  # the lab says it is stopped

    # Same directory again: same passwords, bob's message still there.
    (lab_dir / "lab.log").unlink()
    proc, again = start_lab(lab_dir)
    try:
        assert again["sites"]["beta.test"]["users"] == info["sites"]["beta.test"]["users"]
        relaunched = Lab(again, lab_dir / "lab-info.json", None)
        assert len(messages_with(relaunched, BOB, tag, delete=True)) == 1
    finally:
        rc, out = ctrl_c(proc)
    assert rc == 0, out
    assert not [pid for pid in started_pids(lab_dir) if pid_alive(pid)]
