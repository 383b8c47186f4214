"""`yubin lab up`: prepare the lab directory, run every process under the supervisor, provision, print
the guide.

A process that dies is started again (`yubin/lab/supervisor.py`). Ctrl-C (SIGINT) or SIGTERM stops the
lab: SIGTERM to every process group, SIGKILL to whatever is still there after 5 s; nothing is left behind.
"""

import asyncio
import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import BinaryIO, TextIO

from yubin.lab.certs import ensure_certificate
from yubin.lab.config import ZONES_DIR, LabConfig
from yubin.lab.credentials import SiteCredentials, load_or_create
from yubin.lab.guide import guide
from yubin.lab.info import LabNotRunning, build_info, read_info, write_info
from yubin.lab.processes import ProcessSpec, build_processes, check_overrides, prepare_directories
from yubin.lab.procfile import render
from yubin.lab.provision import provision
from yubin.lab.supervisor import (
    CRASH_LOOP,
    SUPERVISOR_NAME,
    RestartPolicy,
    Supervisor,
    install_stop_signals,
)


class LabError(RuntimeError):
    pass


def prepare(config: LabConfig) -> tuple[dict[str, SiteCredentials], list[ProcessSpec]]:
    """Everything on disk a lab needs (idempotent): directories, credentials, certificate, NSD config,
    Procfile. Returns the credentials and the processes to run."""
    check_overrides(config)
    config.lab_dir.mkdir(parents=True, exist_ok=True)
    credentials = load_or_create(config)
    ensure_certificate(config)
    prepare_directories(config, ZONES_DIR)
    specs = build_processes(config, credentials)
    config.procfile.write_text(render(specs))
    return credentials, specs


def refuse_if_running(config: LabConfig) -> None:
    try:
        read_info(config.info_file)
    except LabNotRunning:
        return
    raise LabError(f"a lab is already running in {config.lab_dir} (see `yubin lab info`)")


def check_ports_free(specs: list[ProcessSpec]) -> None:
    busy = []
    for spec in specs:
        for address in (spec.listens, spec.metrics):
            if address is None:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind(address)
                except OSError as exc:
                    busy.append(f"{spec.name} {address[0]}:{address[1]} ({exc.strerror})")
    if busy:
        raise LabError("cannot listen where the lab needs to:\n  " + "\n  ".join(busy))


def wait_listening(specs: list[ProcessSpec], alive, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    for spec in specs:
        if spec.listens is None:
            continue
        while True:
            if not alive():
                raise LabError(f"the lab stopped while waiting for {spec.name}; see the log")
            try:
                with socket.create_connection(spec.listens, timeout=0.5):
                    break
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise LabError(
                        f"{spec.name} is not listening on {spec.listens} after {timeout:.0f} s"
                    ) from exc
                time.sleep(0.1)


def log_tail(path: Path, lines: int = 15, only: list[str] | None = None) -> str:
    """The processes' last words (the supervisor's own lines left out; only those of `only` if given), to
    say why the lab did not come up."""
    text = path.read_text(errors="replace").splitlines() if path.exists() else []
    own = [
        line
        for line in text
        if " | " in line
        and not line.startswith(f"{SUPERVISOR_NAME} | ")
        and (only is None or line.split(" | ", 1)[0] in only)
    ]
    return "\n".join(["last lines of " + str(path) + ":", *own[-lines:]])


def mark_stopped(config: LabConfig) -> None:
    if config.info_file.exists():
        info = json.loads(config.info_file.read_text())
        info.pop("runner_pid", None)
        info["stopped"] = True
        write_info(config.info_file, info)


def run_lab(
    config: LabConfig,
    *,
    info_file: Path | None = None,
    log: BinaryIO | None = None,
    out: TextIO = sys.stdout,
    policy: RestartPolicy | None = None,
) -> int:
    """Run the lab until Ctrl-C/SIGTERM. Process output goes to `log` (default: <lab dir>/lab.log)."""
    refuse_if_running(config)
    credentials, specs = prepare(config)
    check_ports_free(specs)
    log_path = config.lab_dir / "lab.log"
    log_file = log or log_path.open("ab")
    try:
        return asyncio.run(supervise(config, credentials, specs, log_file, log_path, info_file, out, policy))
    finally:
        if log is None:
            log_file.close()


async def supervise(
    config: LabConfig,
    credentials: dict[str, SiteCredentials],
    specs: list[ProcessSpec],
    log_file: BinaryIO,
    log_path: Path,
    info_file: Path | None,
    out: TextIO,
    policy: RestartPolicy | None,
) -> int:
    supervisor = Supervisor(specs, log_file, config.state_file, policy)
    asked_to_stop = asyncio.Event()

    def on_signal(_signum: int) -> None:
        if not asked_to_stop.is_set():
            print("\nstopping the lab ...", file=out, flush=True)
        asked_to_stop.set()

    install_stop_signals(asyncio.get_running_loop(), on_signal)
    supervisor.start()
    # A process that keeps dying before the lab is up is a mistake (a bad --set value, a busy port):
    # say so at once rather than restarting it until the readiness timeout.
    alive = lambda: not asked_to_stop.is_set() and not supervisor.crash_looping()  # noqa: E731
    ready = asyncio.create_task(asyncio.to_thread(become_ready, config, credentials, specs, alive))
    stop_asked = asyncio.create_task(asked_to_stop.wait())
    await asyncio.wait({ready, stop_asked}, return_when=asyncio.FIRST_COMPLETED)
    failure: BaseException | None = None
    looping: list[str] = []
    if ready.done() and ready.exception() is None:
        info = build_info(config, credentials, runner_pid=os.getpid())
        write_info(config.info_file, info)
        if info_file is not None and info_file != config.info_file:
            write_info(info_file, info)
        print(guide(config, info, log_path if log_file.name == str(log_path) else None), file=out, flush=True)
        await stop_asked
    elif ready.done():
        failure = ready.exception()
        if looping := supervisor.crash_looping():
            failure = LabError(f"{', '.join(looping)} exited {CRASH_LOOP} times while the lab was starting")
        asked_to_stop.set()
    stop_asked.cancel()
    await supervisor.stop()
    with contextlib.suppress(BaseException):
        await ready  # the readiness thread notices `alive()` turned false and ends
    mark_stopped(config)
    if failure is not None:
        print(f"yubin lab: {failure}", file=sys.stderr)
        if log_file.name == str(log_path):
            print(log_tail(log_path, only=looping or None), file=sys.stderr, flush=True)
        return 1
    print("lab stopped", file=out, flush=True)
    return 0


def become_ready(
    config: LabConfig, credentials: dict[str, SiteCredentials], specs: list[ProcessSpec], alive
) -> None:
    """Every server listens and the demo users exist (the supervisor restarts what dies meanwhile)."""
    wait_listening(specs, alive)
    provision(config, credentials, alive=alive)
