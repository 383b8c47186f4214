"""`yubin lab up --replicas relay=3,delivery=2`: parsing, refusals, and the processes it makes."""

import subprocess
import sys
from pathlib import Path

import pytest

from yubin.lab.config import lab_config
from yubin.lab.credentials import load_or_create
from yubin.lab.info import build_info
from yubin.lab.processes import build_processes
from yubin.lab.procfile import render
from yubin.lab.replicas import ReplicasError, parse_replicas


def test_parse_replicas() -> None:
    assert parse_replicas("relay=3,delivery=2") == {"relay": 3, "delivery": 2}
    assert parse_replicas(" relay = 2 , ") == {"relay": 2}
    assert parse_replicas("") == {}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("relay", "ROLE=COUNT"),
        ("relay=x", "ROLE=COUNT"),
        ("relay=-1", "ROLE=COUNT"),
        ("relay=0", "between 1 and"),
        ("relay=99", "between 1 and"),
        ("relay=2,relay=3", "twice"),
        ("relais=2", "no service 'relais'"),
        ("redis=2", "no service 'redis'"),
    ],
)
def test_bad_replicas_are_refused_with_the_reason(text: str, says: str) -> None:
    with pytest.raises(ReplicasError, match=says):
        parse_replicas(text)


@pytest.mark.parametrize("role", ["pop3", "submission", "mx", "auth"])
def test_listeners_are_refused_natively_and_pointed_to_compose(role: str) -> None:
    with pytest.raises(ReplicasError) as refused:
        parse_replicas(f"relay=2,{role}=2")
    assert "compose" in str(refused.value) and "relay, delivery" in str(refused.value)


def test_replicas_are_numbered_processes_with_the_same_settings(tmp_path: Path) -> None:
    config = lab_config(tmp_path / "lab", standard_ports=False, replicas={"relay": 3, "delivery": 2})
    specs = build_processes(config, load_or_create(config))
    by_name = {spec.name: spec for spec in specs}
    for site in ("alpha", "beta"):
        relays = [spec for spec in specs if spec.name.startswith(f"{site}-relay")]
        assert [spec.name for spec in relays] == [f"{site}-relay-{n}" for n in (1, 2, 3)]
        assert all(spec.role == "relay" and spec.listens is None for spec in relays)
        # The same settings but for the port of each one's /metrics.
        assert len({spec.env.pop("YUBIN_METRICS_PORT") for spec in relays}) == 3
        assert relays[0].env == relays[1].env == relays[2].env
        assert [s.name for s in specs if s.role == "delivery" and s.name.startswith(site)] == [
            f"{site}-delivery-1",
            f"{site}-delivery-2",
        ]
        # The others keep their one process and its plain name.
        for role in ("auth", "submission", "mx", "pop3"):
            assert f"{site}-{role}" in by_name
    assert len({spec.name for spec in specs}) == len(specs)
    procfile = render(specs)
    assert "\nalpha-relay-3: exec env " in procfile and "\nalpha-relay: " not in procfile


def test_one_replica_keeps_the_plain_names(tmp_path: Path) -> None:
    config = lab_config(tmp_path / "lab", standard_ports=False)
    names = {spec.name for spec in build_processes(config, load_or_create(config))}
    assert {"alpha-relay", "alpha-delivery", "beta-relay", "beta-delivery"} <= names
    assert not any(name.endswith("-1") for name in names)


def test_a_listener_replica_is_refused_when_building_the_processes(tmp_path: Path) -> None:
    config = lab_config(tmp_path / "lab", standard_ports=False, replicas={"pop3": 2})
    with pytest.raises(ReplicasError, match="pop3"):
        build_processes(config, load_or_create(config))


def test_lab_info_says_how_many_of_each(tmp_path: Path) -> None:
    config = lab_config(tmp_path / "lab", standard_ports=False, replicas={"relay": 3})
    info = build_info(config, load_or_create(config))
    assert info["sites"]["alpha.test"]["replicas"] == {"relay": 3, "delivery": 1}


def test_the_cli_refuses_a_listener_replica_as_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "yubin.cli", "lab", "up", "--lab-dir", str(tmp_path), "--replicas", "pop3=2"],
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert b"pop3 listens on one address and port" in result.stderr
    assert not (tmp_path / "processes.json").exists()
