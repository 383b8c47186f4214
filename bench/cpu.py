"""CPU time of every process of a Yubin lab, read from `/proc/<pid>/stat` around a run: ms per message.

The burst is CPU-bound on a small machine (docs/benchmark.md), so the end-to-end rate is about
cores / (CPU per message summed over the lab); CPU per message per process is the figure that says where
a change helped, and it is far less noisy than a rate on a shared machine.
"""

import json
import os
from pathlib import Path
from typing import Any

TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of the process (all its threads); None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # After the name: state is field 3 of stat(5), utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S


def lab_processes(info: dict[str, Any]) -> dict[str, int]:
    """{process name: pid} of a native lab (its supervisor's `processes.json`), with the runner as `lab`."""
    lab_dir = info.get("lab_dir")
    if not lab_dir:
        return {}
    try:
        state = json.loads((Path(lab_dir) / "processes.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    pids = {name: p["pid"] for name, p in state.get("processes", {}).items() if p.get("pid")}
    if state.get("runner_pid"):
        pids["lab"] = state["runner_pid"]
    return pids


def snapshot(pids: dict[str, int]) -> dict[str, float]:
    return {name: s for name, pid in pids.items() if (s := cpu_seconds(pid)) is not None}


def per_message_ms(before: dict[str, float], after: dict[str, float], count: int) -> dict[str, float]:
    """ms of CPU per message for each process present in both snapshots, and their `total`."""
    ms = {name: (after[name] - before[name]) * 1000 / count for name in before if name in after}
    ms = {name: value for name, value in sorted(ms.items())}
    ms["total"] = sum(ms.values())
    return ms
