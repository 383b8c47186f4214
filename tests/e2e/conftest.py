"""The end-to-end lab: both sites as real processes, started once for the whole e2e session.

`YUBIN_E2E_LAB_INFO=<path of a lab-info JSON>` points the tests at a lab that is already running (the
docker compose lab: `pytest tests/e2e -m "not native_only"`); otherwise the native lab is started on free
ports in a temporary directory, beside any `make lab` a developer has running.
Tests marked `native_only` kill services or read a site's Redis, so they need the native lab.
"""

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.native_lab import NativeLab

LAB_INFO_ENV = "YUBIN_E2E_LAB_INFO"

# Short waits so the retry, reclaim and bounce paths run within the suite's time (all are settings).
E2E_SETTINGS = {
    "YUBIN_RELAY_RETRY_SCHEDULE_S": "1,2",
    "YUBIN_RELAY_RETRY_JITTER": "0",
    "YUBIN_RELAY_SCHEDULER_MAX_SLEEP_S": "0.5",
    "YUBIN_RELAY_CONNECT_TIMEOUT_S": "3",
    "YUBIN_BUS_CLAIM_IDLE_MS": "1500",
    "YUBIN_BUS_BLOCK_MS": "500",
    "YUBIN_DELIVERY_RETRY_DELAYS_S": "[1, 2]",
    "YUBIN_DELIVERY_SCHEDULER_POLL_S": "0.5",
    # Cheaper password hashes: every POP3 poll logs in.
    "YUBIN_AUTH_ARGON2_TIME_COST": "1",
    "YUBIN_AUTH_ARGON2_MEMORY_KIB": "8192",
}


@dataclass
class Lab:
    info: dict[str, Any]
    info_path: Path
    native: NativeLab | None

    def site(self, domain: str) -> dict[str, Any]:
        return self.info["sites"][domain]

    def password(self, address: str) -> str:
        return self.site(address.rpartition("@")[2])["users"][address]


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    external = os.environ.get(LAB_INFO_ENV)
    if external:
        path = Path(external)
        yield Lab(json.loads(path.read_text()), path, None)
        return
    native = NativeLab(tmp_path_factory.mktemp("lab"), E2E_SETTINGS)
    try:
        info = native.start()
        yield Lab(info, native.config.info_file, native)
    finally:
        native.stop()


@pytest.fixture
def native_lab(lab: Lab) -> NativeLab:
    if lab.native is None:
        pytest.fail(f"this test needs the native lab; against {LAB_INFO_ENV} run -m 'not native_only'")
    return lab.native
