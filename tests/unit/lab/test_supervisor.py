"""The lab's supervisor with real child processes: a SIGKILLed child is started again (with a line in the
log and a restart count in the state file), and stopping leaves no process behind, even a paused one."""

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

from yubin.cli.lab import ps_table
from yubin.lab.info import pid_alive
from yubin.lab.processes import ProcessSpec
from yubin.lab.supervisor import RestartPolicy, Supervisor, read_state

SLEEPER = (sys.executable, "-c", "import time\nprint('up', flush=True)\ntime.sleep(600)")
# Ignores SIGTERM: only the SIGKILL after the grace period ends it.
STUBBORN = (
    sys.executable,
    "-c",
    "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('up', flush=True)\n"
    "time.sleep(600)",
)
FAST = RestartPolicy(first_delay_s=0.05, max_delay_s=0.2, stable_after_s=30, stop_grace_s=1.0)


async def until(what: str, probe, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while not (result := probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
    return result


def events(log_path: Path) -> list[dict]:
    return [
        json.loads(line.removeprefix("lab | "))
        for line in log_path.read_text().splitlines()
        if line.startswith("lab | ")
    ]


async def test_a_killed_child_is_restarted_and_counted(tmp_path: Path) -> None:
    log_path, state_file = tmp_path / "lab.log", tmp_path / "processes.json"
    specs = [ProcessSpec("alpha-relay", SLEEPER, role="relay"), ProcessSpec("dns", SLEEPER)]
    with log_path.open("ab") as log:
        supervisor = Supervisor(specs, log, state_file, FAST)
        supervisor.start()
        try:
            first = await until("the relay to start", lambda: supervisor.children["alpha-relay"].pid)
            await until("its output in the log", lambda: "alpha-relay | up" in log_path.read_text())
            os.kill(first, signal.SIGKILL)
            second = await until(
                "a new relay",
                lambda: (pid := supervisor.children["alpha-relay"].pid) not in (None, first) and pid,
            )
            state = read_state(state_file)["processes"]
            assert state["alpha-relay"] == {
                **state["alpha-relay"],
                "pid": second,
                "restarts": 1,
                "state": "running",
                "last_exit": "killed by SIGKILL",
            }
            assert state["dns"]["restarts"] == 0
            table = ps_table(state, now=time.time())
            assert f"alpha-relay  {second}" in table and "killed by SIGKILL" in table
        finally:
            await supervisor.stop()
    assert not pid_alive(second)
    exited = [e for e in events(log_path) if e["event"] == "exited"]
    assert exited == [{**exited[0], "process": "alpha-relay", "pid": first, "reason": "killed by SIGKILL"}]
    assert all(p["state"] == "stopped" for p in read_state(state_file)["processes"].values())


async def test_a_child_that_keeps_dying_is_restarted_with_growing_delays(tmp_path: Path) -> None:
    crasher = ProcessSpec("beta-mx", (sys.executable, "-c", "raise SystemExit(3)"), role="mx")
    with (tmp_path / "lab.log").open("ab") as log:
        supervisor = Supervisor([crasher], log, tmp_path / "processes.json", FAST)
        supervisor.start()
        await until("four restarts", lambda: supervisor.children["beta-mx"].restarts >= 4)
        assert supervisor.crash_looping() == ["beta-mx"]  # `yubin lab up` gives up starting on this
        await supervisor.stop()
    delays = [e["restart_in_s"] for e in events(tmp_path / "lab.log") if e["event"] == "exited"]
    assert delays[:4] == [0.05, 0.1, 0.2, 0.2]  # doubling, capped at max_delay_s


async def test_stop_leaves_no_process_even_a_paused_or_stubborn_one(tmp_path: Path) -> None:
    specs = [
        ProcessSpec("beta-mx", SLEEPER, role="mx"),
        ProcessSpec("alpha-pop3", STUBBORN, role="pop3"),
        ProcessSpec("alpha-redis", SLEEPER, role="redis"),
    ]
    with (tmp_path / "lab.log").open("ab") as log:
        supervisor = Supervisor(specs, log, tmp_path / "processes.json", FAST)
        supervisor.start()
        pids = [
            await until(name, lambda name=name: supervisor.children[name].pid) for name in supervisor.children
        ]
        await until("the output", lambda: (tmp_path / "lab.log").read_text().count("| up") == 3)
        os.kill(pids[0], signal.SIGSTOP)
        await asyncio.wait_for(supervisor.stop(), 10)
    assert not [pid for pid in pids if pid_alive(pid)]
    killed = [e["process"] for e in events(tmp_path / "lab.log") if e["event"] == "killing"]
    assert killed == ["alpha-pop3"]
