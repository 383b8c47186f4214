"""The replicas of a scaled compose lab, through the Docker CLI: which containers a service runs, their
address on the `lab` network, their logs, `docker kill`.

`make test-compose` scales the lab and says how in two variables: YUBIN_COMPOSE_PROJECT (the compose
project) and YUBIN_COMPOSE_SCALE (`relay-alpha=3,delivery-alpha=3,...`).
"""

import json
import os
import subprocess
from dataclasses import dataclass

import pytest

PROJECT_ENV = "YUBIN_COMPOSE_PROJECT"
SCALE_ENV = "YUBIN_COMPOSE_SCALE"


@dataclass(frozen=True)
class Replica:
    service: str
    container: str
    """The container's name (`yubintest_relay-alpha_2`)."""
    number: int
    lab_address: str | None
    """Its address on the `lab` network (None for services only on their site's network)."""


def docker(*args: str, timeout: float = 60) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {result.returncode}: {result.stderr.decode()}")
    return result.stdout.decode(errors="replace")


def project() -> str:
    name = os.environ.get(PROJECT_ENV)
    if not name:
        pytest.fail(f"{PROJECT_ENV} is not set: run `make test-compose`, which scales the compose lab")
    return name


def scale() -> dict[str, int]:
    text = os.environ.get(SCALE_ENV)
    if not text:
        pytest.fail(f"{SCALE_ENV} is not set: run `make test-compose`, which scales the compose lab")
    pairs = (part.split("=", 1) for part in text.split(",") if part)
    return {service: int(count) for service, count in pairs}


def replicas(service: str, *, running_only: bool = True) -> list[Replica]:
    ids = docker(
        "ps",
        *([] if running_only else ["-a"]),
        "-q",
        "--filter",
        f"label=com.docker.compose.project={project()}",
        "--filter",
        f"label=com.docker.compose.service={service}",
    ).split()
    if not ids:
        return []
    found = []
    for container in json.loads(docker("inspect", *ids)):
        networks = container["NetworkSettings"]["Networks"]
        lab = next((net for name, net in networks.items() if name.endswith("_lab")), None)
        found.append(
            Replica(
                service=service,
                container=container["Name"].lstrip("/"),
                number=int(container["Config"]["Labels"]["com.docker.compose.container-number"]),
                lab_address=lab["IPAddress"] if lab and lab.get("IPAddress") else None,
            )
        )
    return sorted(found, key=lambda r: r.number)


def logs(container: str, since: str | None = None) -> str:
    """Its output (stdout and stderr), from `since` (an RFC 3339 time, Docker's clock) on."""
    result = subprocess.run(
        ["docker", "logs", *(["--since", since] if since else []), container],
        capture_output=True,
        timeout=60,
        check=False,
    )
    return (result.stdout + result.stderr).decode(errors="replace")


def json_lines(text: str) -> list[dict]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return lines


def kill(replica: Replica) -> None:
    """SIGKILL, as `docker kill` sends it: no chance to finish or acknowledge anything."""
    docker("kill", replica.container)
