"""lab-info.json: the contract's shape, and telling a running lab from a stopped one."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from yubin.lab.config import lab_config
from yubin.lab.credentials import load_or_create
from yubin.lab.info import LabNotRunning, build_info, read_info, write_info


def test_info_has_the_contract_shape(tmp_path: Path) -> None:
    config = lab_config(tmp_path, standard_ports=True)
    info = build_info(config, load_or_create(config), runner_pid=os.getpid())
    assert info["dns"] == "127.0.3.53:53"
    alpha = info["sites"]["alpha.test"]
    assert alpha["submission"] == "127.0.3.10:587" and alpha["mx"] == "127.0.3.10:25"
    assert alpha["pop3"] == "127.0.3.10:110" and alpha["admin"] == "http://127.0.3.10:8080"
    assert list(alpha["users"]) == ["alice@alpha.test"] and len(alpha["admin_token"]) >= 32
    assert list(info["sites"]["beta.test"]["users"]) == ["bob@beta.test"]


def test_running_stopped_and_missing_labs(tmp_path: Path) -> None:
    config = lab_config(tmp_path, standard_ports=False)
    path = tmp_path / "lab-info.json"
    with pytest.raises(LabNotRunning, match="make lab"):
        read_info(path)

    write_info(path, build_info(config, load_or_create(config), runner_pid=os.getpid()))
    assert read_info(path)["runner_pid"] == os.getpid()
    assert path.stat().st_mode & 0o077 == 0  # tokens and passwords inside

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    write_info(path, build_info(config, load_or_create(config), runner_pid=int(gone.stdout)))
    with pytest.raises(LabNotRunning, match="not running"):
        read_info(path)

    write_info(path, {**build_info(config, load_or_create(config)), "stopped": True})
    with pytest.raises(LabNotRunning, match="stopped"):
        read_info(path)
    assert read_info(path, require_running=False)["stopped"] is True
