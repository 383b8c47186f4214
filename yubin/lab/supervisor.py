"""The lab's process supervisor: start every process, restart one that dies, stop them all on request.

Like docker compose's `restart: unless-stopped`: a process that exits (a crash, or a learner's `kill -9`)
is started again after a short backoff (0.25 s, doubling up to a few seconds; back to 0.25 s once it has
run for a while), so mail waits and then flows again. Only `stop()` (Ctrl-C or SIGTERM to the runner)
ends the lab: SIGTERM to every service, SIGKILL to whatever is still there after the grace period, then
the same for Redis and NSD (last, so the services can finish their work against them).

Each process's output goes to the lab log prefixed with its name (`alpha-relay | {...}`); the supervisor's
own lines (`lab | {"event": "exited", ...}`) are JSON. `processes.json` in the lab directory holds every
process's pid, state and restart count: `yubin lab ps` prints it, and a chaos run kills by its pids.
"""

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from yubin.lab.config import ROOT
from yubin.lab.info import write_info
from yubin.lab.processes import ProcessSpec

SUPERVISOR_NAME = "lab"
FLUSH_EVERY_S = 0.1
CRASH_LOOP = 3
"""Quick exits in a row after which `crash_looping` names a process."""
SERVERS = ("redis", None)
"""Roles stopped last: Redis and NSD (NSD has no role)."""


@dataclass(frozen=True)
class RestartPolicy:
    first_delay_s: float = 0.25
    max_delay_s: float = 4.0
    stable_after_s: float = 10.0
    """A process that ran this long before it died is restarted after `first_delay_s` again."""
    stop_grace_s: float = 5.0
    """SIGTERM, then SIGKILL after this long; the services' own shutdown grace is set below it."""

    def delay(self, quick_failures: int) -> float:
        return min(self.max_delay_s, self.first_delay_s * 2 ** max(0, quick_failures - 1))


class Output(asyncio.SubprocessProtocol):
    """A child's output, copied to the log a whole chunk of lines at a time, each line prefixed by its name.

    A protocol rather than a StreamReader loop: one callback per chunk the pipe delivers, no task wake-up
    per read, so passing the services' JSON lines costs the lab as little as the runner can make it.
    """

    def __init__(self, name: str, sink: Callable[[bytes], None]) -> None:
        self.prefix = f"{name} | ".encode()
        self.sink = sink
        self.pending = b""
        loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[None] = loop.create_future()
        self.finished: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self.pending += data
        complete, newline, self.pending = self.pending.rpartition(b"\n")
        if newline:
            self.sink(self.prefix + complete.replace(b"\n", b"\n" + self.prefix) + b"\n")
        elif len(self.pending) > 65536:  # a line without end: do not hold it in memory
            self.sink(self.prefix + self.pending + b"\n")
            self.pending = b""

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        """The process has exited and its output is closed: nothing more will come."""
        if self.pending:
            self.sink(self.prefix + self.pending + b"\n")
            self.pending = b""
        self.process_exited()
        if not self.finished.done():
            self.finished.set_result(None)


@dataclass
class Child:
    spec: ProcessSpec
    transport: asyncio.SubprocessTransport | None = None
    output: Output | None = None
    state: str = "starting"
    restarts: int = 0
    quick_failures: int = 0
    started_at: float = 0.0
    last_exit: str | None = None

    @property
    def pid(self) -> int | None:
        if self.transport is None or self.transport.get_returncode() is not None:
            return None
        return self.transport.get_pid()

    async def wait(self) -> int:
        assert self.output is not None and self.transport is not None
        await asyncio.shield(self.output.exited)  # a cancelled waiter must not cancel the future
        # Its last lines, unless a child of its own still holds the pipe open (NSD forks servers).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.output.finished), 1.0)
        returncode = self.transport.get_returncode()
        return -signal.SIGKILL if returncode is None else returncode

    def status(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "state": self.state,
            "restarts": self.restarts,
            "started_at": self.started_at or None,
            "last_exit": self.last_exit,
            "site": self.spec.site,
            "role": self.spec.role,
        }


def exit_reason(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


class Supervisor:
    def __init__(
        self,
        specs: list[ProcessSpec],
        log: BinaryIO,
        state_file: Path,
        policy: RestartPolicy | None = None,
    ) -> None:
        self.children = {spec.name: Child(spec) for spec in specs}
        self.log = log
        self.state_file = state_file
        self.policy = policy or RestartPolicy()
        self.stopping = asyncio.Event()
        self.watchers: list[asyncio.Task[None]] = []
        self.flusher: asyncio.Task[None] | None = None
        self.pending: list[bytes] = []
        # Every file write happens on this one thread, in order: a write that blocks (a busy disk
        # throttling writers) must not hold up noticing a dead process and starting it again.
        self.disk = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lab-disk")

    # -- output -------------------------------------------------------------------------------------------

    def log_event(self, event: str, **fields: Any) -> None:
        line = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds"), "event": event, **fields}
        self.write(f"{SUPERVISOR_NAME} | {json.dumps(line)}\n".encode())

    def write(self, data: bytes) -> None:
        """Collected here; `flush_log` hands it to the writer thread every FLUSH_EVERY_S."""
        self.pending.append(data)

    async def flush(self) -> None:
        if self.pending:
            data, self.pending = b"".join(self.pending), []
            # Shielded: `stop` cancels the flusher, and cancelling a run_in_executor future that is still
            # queued cancels the write itself, losing the lab's last lines.
            await asyncio.shield(asyncio.wrap_future(self.disk.submit(self.write_out, data)))

    def write_out(self, data: bytes) -> None:
        try:
            self.log.write(data)
            self.log.flush()
        except (OSError, ValueError):
            pass  # a closed or full log must not take the lab down

    async def flush_log(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            await self.flush()

    def save_state(self) -> None:
        state = {
            "runner_pid": os.getpid(),
            "updated_at": time.time(),
            "processes": {name: child.status() for name, child in self.children.items()},
        }
        self.disk.submit(self.write_state, state)

    def write_state(self, state: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            write_info(self.state_file, state)

    # -- life cycle ---------------------------------------------------------------------------------------

    async def spawn(self, child: Child) -> None:
        spec = child.spec
        output = Output(spec.name, self.write)
        child.transport, child.output = await asyncio.get_running_loop().subprocess_exec(
            lambda: output,
            *spec.argv,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **spec.env},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            # Its own process group: the terminal's Ctrl-C reaches the supervisor only, which stops the
            # services in order; a signal to the group also reaches anything the process started.
            start_new_session=True,
        )
        child.started_at = time.time()
        child.state = "running"
        self.log_event("started", process=spec.name, pid=child.pid, restarts=child.restarts)
        self.save_state()

    async def watch(self, child: Child) -> None:
        """Run one process until the lab stops, starting it again whenever it dies."""
        while not self.stopping.is_set():
            try:
                await self.spawn(child)
            except OSError as exc:  # e.g. out of file descriptors: try again like a crash
                child.transport, pid, child.started_at = None, None, time.time()
                child.last_exit = f"could not start: {exc}"
            else:
                pid = child.pid
                if self.stopping.is_set():  # started while `stop` was signalling the others
                    signal_group(child, signal.SIGTERM)
                child.last_exit = exit_reason(await child.wait())
                child.transport.close()
            if self.stopping.is_set():
                child.state = "stopped"
                self.log_event("stopped", process=child.spec.name, pid=pid, reason=child.last_exit)
                self.save_state()
                return
            ran_for = time.time() - child.started_at
            child.quick_failures = 1 if ran_for >= self.policy.stable_after_s else child.quick_failures + 1
            delay = self.policy.delay(child.quick_failures)
            child.state = "restarting"
            child.restarts += 1
            self.log_event(
                "exited",
                process=child.spec.name,
                pid=pid,
                reason=child.last_exit,
                ran_for_s=round(ran_for, 3),
                restart_in_s=delay,
            )
            self.save_state()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)
        child.state = "stopped"
        self.save_state()

    def start(self) -> None:
        self.watchers = [asyncio.create_task(self.watch(child)) for child in self.children.values()]
        self.flusher = asyncio.create_task(self.flush_log())

    def crash_looping(self) -> list[str]:
        return [name for name, child in self.children.items() if child.quick_failures >= CRASH_LOOP]

    async def stop(self) -> None:
        """SIGTERM the services, SIGKILL what remains after the grace period; then Redis and NSD."""
        self.stopping.set()
        services = [c for c in self.children.values() if c.spec.role not in SERVERS]
        servers = [c for c in self.children.values() if c.spec.role in SERVERS]
        for group in (services, servers):
            await self.terminate(group)
        late: set[asyncio.Task[None]] = set()
        if self.watchers:
            _, late = await asyncio.wait(self.watchers, timeout=self.policy.stop_grace_s)
        if late:  # one started while the others were being stopped and ignores SIGTERM
            for child in self.children.values():
                signal_group(child, signal.SIGKILL)
            await asyncio.gather(*late, return_exceptions=True)
        if self.flusher is not None:
            self.flusher.cancel()
        self.log_event("lab stopped")
        await self.flush()
        self.save_state()
        await asyncio.get_running_loop().run_in_executor(self.disk, int)  # after every write before it
        self.disk.shutdown(wait=False)

    async def terminate(self, children: list[Child]) -> None:
        running = [c for c in children if c.pid is not None]
        for child in running:
            signal_group(child, signal.SIGCONT)  # a process paused with SIGSTOP must see the SIGTERM
            signal_group(child, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.gather(*(c.wait() for c in running)), self.policy.stop_grace_s)
        except TimeoutError:
            for child in running:
                if child.pid is not None:
                    self.log_event("killing", process=child.spec.name, pid=child.pid)
                    signal_group(child, signal.SIGKILL)
            await asyncio.gather(*(c.wait() for c in running))


def signal_group(child: Child, signum: signal.Signals) -> None:
    if child.pid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signum)


def read_state(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def install_stop_signals(loop: asyncio.AbstractEventLoop, on_stop: Callable[[int], None]) -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_stop, signum)
