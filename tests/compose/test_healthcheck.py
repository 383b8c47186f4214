"""infra/docker/healthcheck.py, the containers' healthchecks, run as Docker runs them (a process with the
container's environment), against a real socket and a real Redis."""

import os
import socket
import subprocess
import sys

import redis

from shared import streams
from tests.compose.compose_file import ROOT

HEALTHCHECK = ROOT / "infra" / "docker" / "healthcheck.py"


def healthcheck(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), *args],
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_tcp_is_healthy_while_something_listens() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = str(server.getsockname()[1])
        assert healthcheck("tcp", port).returncode == 0
    result = healthcheck("tcp", port)
    assert result.returncode == 1
    assert "unhealthy" in result.stderr


def test_a_worker_is_healthy_once_its_consumer_group_exists(redis_url: str) -> None:
    env = {"YUBIN_REDIS_URL": redis_url}
    before = healthcheck("consumer", "relay", env=env)
    assert before.returncode == 1
    assert f"no group {streams.RELAY_GROUP}" in before.stderr
    # What the relay does at start (shared.bus.Consumer.ensure_group), keeping its connection open.
    worker = redis.Redis.from_url(redis_url)
    try:
        worker.xgroup_create(streams.OUTBOUND, streams.RELAY_GROUP, id="0", mkstream=True)
        assert healthcheck("consumer", "relay", env=env).returncode == 0
        assert healthcheck("consumer", "delivery", env=env).returncode == 1
    finally:
        worker.close()


def test_usage_errors_are_not_health() -> None:
    assert healthcheck("nonsense", "1").returncode == 2
