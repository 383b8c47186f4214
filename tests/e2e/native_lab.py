"""The native lab under a small harness of the tests' own, so a test can SIGKILL and restart one service.

It runs exactly the processes `yubin lab up` runs (`yubin.lab.processes`), on free ports, and provisions
the lab the same way; only the runner differs: the lab's supervisor restarts a dead process by itself
after a backoff, while a crash test chooses the moment a service comes back (and each process logs to its
own file here, which a failing test prints).
"""

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from yubin.lab.config import ROOT, lab_config, with_free_ports
from yubin.lab.ha import with_ha
from yubin.lab.info import build_info, write_info
from yubin.lab.processes import ProcessSpec
from yubin.lab.provision import provision
from yubin.lab.runner import prepare, wait_listening


class ManagedProcess:
    def __init__(self, spec: ProcessSpec, log_dir: Path) -> None:
        self.spec = spec
        self.log_path = log_dir / f"{spec.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                list(self.spec.argv),
                cwd=ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **self.spec.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: the crash path; no chance to finish or acknowledge anything."""
        if self.alive():
            assert self.proc is not None
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class NativeLab:
    def __init__(self, lab_dir: Path, settings: dict[str, str], *, ha: bool = False) -> None:
        self.config = with_free_ports(lab_config(lab_dir, standard_ports=False, settings=settings))
        if ha:  # `yubin lab up --ha`: a primary, a replica and three Sentinels per site
            self.config = with_ha(self.config, free_ports=True)
        self.credentials, specs = prepare(self.config)
        log_dir = lab_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.processes = {spec.name: ManagedProcess(spec, log_dir) for spec in specs}
        self.info: dict[str, Any] = {}

    def start(self) -> dict[str, Any]:
        # All at once, as the lab's supervisor starts them; the services wait for Redis and auth.
        for process in self.processes.values():
            process.start()
        try:
            wait_listening([p.spec for p in self.processes.values()], self.all_alive)
            provision(self.config, self.credentials, alive=self.all_alive)
        except Exception as exc:
            raise RuntimeError(f"the lab did not come up: {exc}\n{self.dead_logs()}") from exc
        self.info = build_info(self.config, self.credentials)
        write_info(self.config.info_file, self.info)
        return self.info

    def all_alive(self) -> bool:
        return all(p.alive() for p in self.processes.values())

    def dead_logs(self) -> str:
        return "\n".join(
            f"--- {p.spec.name} (exited {p.proc.returncode if p.proc else '?'}):\n{p.logs()[-3000:]}"
            for p in self.processes.values()
            if not p.alive()
        )

    def kill(self, name: str) -> None:
        self.processes[name].kill()

    def restart(self, name: str) -> None:
        process = self.processes[name]
        process.stop()
        process.start()
        if process.spec.listens is not None:
            wait_listening([process.spec], process.alive)

    def stop(self) -> None:
        services = [p for p in self.processes.values() if p.spec.role not in ("redis", None)]
        for process in services:
            if process.alive():
                assert process.proc is not None
                os.kill(process.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in services:
            process.stop(timeout=max(0.1, deadline - time.monotonic()))
        for process in self.processes.values():
            process.stop()
