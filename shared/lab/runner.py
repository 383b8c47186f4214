"""`yubin lab up`: prepare the lab directory, run every process under honcho, provision, print the guide.

Ctrl-C (SIGINT) or SIGTERM stops honcho, which sends SIGTERM to every process group it started and
SIGKILL to whatever is still there after 5 s: nothing is left behind.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO

from shared.lab.certs import ensure_certificate
from shared.lab.config import ROOT, ZONES_DIR, LabConfig
from shared.lab.credentials import SiteCredentials, load_or_create
from shared.lab.guide import guide
from shared.lab.info import LabNotRunning, build_info, read_info, write_info
from shared.lab.processes import ProcessSpec, build_processes, check_overrides, prepare_directories
from shared.lab.procfile import render
from shared.lab.provision import provision


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
        if spec.listens is None:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(spec.listens)
            except OSError as exc:
                busy.append(f"{spec.name} {spec.listens[0]}:{spec.listens[1]} ({exc.strerror})")
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


def log_tail(path: Path, lines: int = 15) -> str:
    """The processes' last words (honcho's own lines left out), to say why the lab did not come up."""
    text = path.read_text(errors="replace").splitlines() if path.exists() else []
    own = [line for line in text if "| " in line and " system " not in line.split("|", 1)[0]]
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
    log: TextIO | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Run the lab until Ctrl-C/SIGTERM. Process output goes to `log` (default: <lab dir>/lab.log)."""
    refuse_if_running(config)
    credentials, specs = prepare(config)
    check_ports_free(specs)
    log_path = config.lab_dir / "lab.log"
    log_file = log or log_path.open("a")
    honcho = subprocess.Popen(
        [sys.executable, "-m", "honcho", "-f", str(config.procfile), "-d", str(ROOT), "start"],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            if signum:
                print("\nstopping the lab ...", file=out, flush=True)
        if honcho.poll() is None:
            honcho.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        alive = lambda: honcho.poll() is None and not stopping  # noqa: E731
        wait_listening(specs, alive)
        provision(config, credentials, alive=alive)
        info = build_info(config, credentials, runner_pid=os.getpid())
        write_info(config.info_file, info)
        if info_file is not None and info_file != config.info_file:
            write_info(info_file, info)
        print(guide(config, info, log_path if log is None else None), file=out, flush=True)
    except Exception as exc:
        asked_to_stop = stopping
        stop(0, None)
        honcho.wait()
        mark_stopped(config)
        if asked_to_stop:
            return 0
        print(f"yubin lab: {exc}", file=sys.stderr)
        if log is None:
            print(log_tail(log_path), file=sys.stderr, flush=True)
        return 1
    honcho.wait()
    mark_stopped(config)
    if not stopping:
        print(f"yubin lab: a process exited (honcho rc {honcho.returncode})", file=sys.stderr)
        if log is None:
            print(log_tail(log_path), file=sys.stderr, flush=True)
        return 1
    print("lab stopped", file=out, flush=True)
    return 0
