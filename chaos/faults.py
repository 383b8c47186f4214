"""The seeded fault schedule and the thread that carries it out against the lab's processes.

Kinds: `kill -9` of every kind of process (submission, mx, relay, delivery, pop3, auth, Redis, NSD) of a
random site; a pause (SIGSTOP, then SIGCONT) of NSD ("DNS down for a while") and of beta's MX (its port
still accepts connections, nothing answers: the relay times out and defers). The supervisor restarts what
was killed; a paused process is resumed after its duration, and at the end whatever is still paused.
The schedule is a function of the seed: the same seed gives the same faults in the same order with the
same gaps (what they hit depends on the moment, as with real crashes).
"""

import os
import random
import signal
import threading
import time
from dataclasses import dataclass

from chaos.lab import ChaosLab

KILLED_ROLES = ("submission", "mx", "relay", "delivery", "pop3", "auth", "redis", "dns")
PAUSED = ("dns", "beta-mx")
SITES = ("alpha", "beta")


@dataclass(frozen=True)
class Fault:
    gap_s: float
    """Wait after the previous fault (or the start) before this one."""
    action: str
    """`kill` (SIGKILL) or `pause` (SIGSTOP for `duration_s`, then SIGCONT)."""
    process: str
    duration_s: float = 0.0

    def describe(self) -> str:
        if self.action == "pause":
            return f"pause {self.process} for {self.duration_s:.1f} s"
        return f"kill -9 {self.process}"


def schedule(seed: int, count: int, gap_s: tuple[float, float], pause_s: tuple[float, float]) -> list[Fault]:
    """`count` faults; every kind appears once in each round of len(KILLED_ROLES) + len(PAUSED) faults."""
    rng = random.Random(seed)
    kinds = [("kill", role) for role in KILLED_ROLES] + [("pause", name) for name in PAUSED]
    faults: list[Fault] = []
    while len(faults) < count:
        round_ = kinds[:]
        rng.shuffle(round_)
        for action, what in round_:
            gap = round(rng.uniform(*gap_s), 2)
            if action == "pause":
                faults.append(Fault(gap, action, what, round(rng.uniform(*pause_s), 1)))
            elif what == "dns":
                faults.append(Fault(gap, action, "dns"))
            else:
                faults.append(Fault(gap, action, f"{rng.choice(SITES)}-{what}"))
    return faults[:count]


@dataclass
class Injected:
    at_s: float
    fault: Fault
    pid: int | None

    def describe(self) -> str:
        hit = f"pid {self.pid}" if self.pid is not None else "not running at that moment"
        return f"{self.at_s:7.1f} s  {self.fault.describe()}  ({hit})"


class Injector(threading.Thread):
    """Carries out the schedule until it ends or `done` is set; resumes every paused process before it ends."""

    def __init__(self, lab: ChaosLab, faults: list[Fault], done: threading.Event) -> None:
        super().__init__(name="chaos-injector", daemon=True)
        self.lab = lab
        self.faults = faults
        self.done = done
        self.injected: list[Injected] = []
        self.errors: list[str] = []
        self.paused: dict[int, float] = {}  # pid -> when to resume
        self.started = time.monotonic()

    def run(self) -> None:
        try:
            for fault in self.faults:
                if self.sleep(fault.gap_s):
                    break
                self.inject(fault)
            while self.paused and not self.sleep(0.1):
                pass  # the last pauses run their full duration
        except Exception as exc:  # reported, never silent: a broken injector makes the run invalid
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            self.resume_all()

    def sleep(self, seconds: float) -> bool:
        """Sleep, resuming paused processes when due; True once the run is over."""
        end = time.monotonic() + seconds
        while (now := time.monotonic()) < end:
            self.resume_due(now)
            if self.done.wait(min(0.05, end - now)):
                return True
        self.resume_due(time.monotonic())
        return self.done.is_set()

    def inject(self, fault: Fault) -> None:
        signum = signal.SIGSTOP if fault.action == "pause" else signal.SIGKILL
        pid = self.lab.signal(fault.process, signum)
        if pid is not None and fault.action == "pause":
            self.paused[pid] = time.monotonic() + fault.duration_s
        self.injected.append(Injected(time.monotonic() - self.started, fault, pid))

    def resume_due(self, now: float) -> None:
        for pid, due in list(self.paused.items()):
            if due <= now:
                self.resume(pid)

    def resume_all(self) -> None:
        for pid in list(self.paused):
            self.resume(pid)

    def resume(self, pid: int) -> None:
        del self.paused[pid]
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass  # killed while paused: the supervisor started a fresh one
