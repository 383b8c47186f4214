"""`yubin lab up --replicas relay=2,delivery=2`: several consumers of one group per site, supervised.

The lab runs two relays and two delivery workers per site. Messages go from alice to herself (alpha's
delivery) and to bob (alpha's relay, beta's delivery) while one relay of alpha and one delivery worker of
each site are killed with SIGKILL; the supervisor starts them again (`yubin lab ps` counts it). Every
message must arrive exactly once, and every replica must have done some of the work (its own lines in
the lab log).
"""

import collections
import json
import os
import re
import signal
import smtplib
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import E2E_SETTINGS, Lab
from tests.e2e.mail import hostport, maildrop, token, wait_for
from tests.e2e.test_lab_runner import ctrl_c, lab_ps
from tests.e2e.test_lab_runner import start_lab as start_lab_with

ALICE = "alice@alpha.test"
BOB = "bob@beta.test"
COUNT = 120
TOKEN = re.compile(rb"X-E2E-Token: (\S+)")
KILLED = ("alpha-relay-1", "alpha-delivery-2", "beta-delivery-1")


def start_lab(lab_dir: Path) -> tuple[subprocess.Popen, dict]:
    settings = [arg for key, value in E2E_SETTINGS.items() for arg in ("--set", f"{key}={value}")]
    return start_lab_with(lab_dir, "--replicas", "relay=2,delivery=2", *settings, timeout=120)


def tokens(lab: Lab, address: str, run: str) -> collections.Counter[str]:
    return collections.Counter(
        match[1].decode()
        for message in maildrop(lab, address)
        for match in TOKEN.finditer(message)
        if match[1].decode().startswith(run + "-")
    )


def work_lines(lab_dir: Path) -> collections.Counter[str]:
    """Per process, the lines saying it finished a piece of work: a relay attempt, a stored message."""
    done: collections.Counter[str] = collections.Counter()
    for line in (lab_dir / "lab.log").read_text(errors="replace").splitlines():
        name, sep, rest = line.partition(" | ")
        if sep and rest.startswith("{"):
            try:
                msg = json.loads(rest).get("msg")
            except json.JSONDecodeError:
                continue
            if msg in ("attempt finished", "stored"):
                done[name] += 1
    return done


@pytest.mark.native_only  # starts its own lab
def test_replicas_share_the_work_and_survive_kill_9(tmp_path: Path) -> None:
    lab_dir = tmp_path / "lab"
    proc, info = start_lab(lab_dir)
    try:
        assert info["sites"]["alpha.test"]["replicas"] == {"relay": 2, "delivery": 2}
        before = lab_ps(lab_dir)
        for site in ("alpha", "beta"):
            for role in ("relay", "delivery"):
                assert {f"{site}-{role}-1", f"{site}-{role}-2"} <= set(before)
                assert f"{site}-{role}" not in before
        lab = Lab(info, lab_dir / "lab-info.json", None)
        run = token()
        host, port = hostport(info["sites"]["alpha.test"]["submission"])
        kills = {COUNT * (i + 1) // (len(KILLED) + 1): name for i, name in enumerate(KILLED)}
        with smtplib.SMTP(host, port, timeout=60) as smtp:
            smtp.login(ALICE, lab.password(ALICE))
            for n in range(COUNT):
                to = ALICE if n % 2 == 0 else BOB
                message = f"From: {ALICE}\r\nTo: {to}\r\nSubject: replicas {n}\r\nX-E2E-Token: {run}-{n}\r\n\r\nhi\r\n"
                smtp.sendmail(ALICE, [to], message.encode())
                if n in kills:
                    os.kill(lab_ps(lab_dir)[kills[n]]["pid"], signal.SIGKILL)

        wanted = {
            ALICE: {f"{run}-{n}" for n in range(0, COUNT, 2)},
            BOB: {f"{run}-{n}" for n in range(1, COUNT, 2)},
        }
        for address in (ALICE, BOB):
            wait_for(
                f"every message for {address}",
                lambda a=address: set(tokens(lab, a, run)) >= wanted[a],
                timeout=120,
                every=1,
            )
        after = lab_ps(lab_dir)
        for name in KILLED:
            assert after[name]["restarts"] >= 1 and after[name]["state"] == "running", after[name]
            assert after[name]["last_exit"] == "killed by SIGKILL"
        for address in (ALICE, BOB):
            found = tokens(lab, address, run)
            assert set(found) == wanted[address]
            assert not {t: c for t, c in found.items() if c > 1}, f"duplicates for {address}"
        done = work_lines(lab_dir)
        for name in ("alpha-relay-1", "alpha-relay-2", "alpha-delivery-1", "alpha-delivery-2"):
            assert done[name] > 0, f"{name} did no work: {dict(done)}"
        for name in ("beta-delivery-1", "beta-delivery-2"):
            assert done[name] > 0, f"{name} did no work: {dict(done)}"
    finally:
        rc, out = ctrl_c(proc)
    assert rc == 0, out
