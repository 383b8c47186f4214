"""The Kubernetes manifests (infra/k8s) render with `kubectl kustomize`, pass the Kubernetes JSON schemas,
and stay in lock-step with the code: settings names, stream and group names, Redis durability."""

import copy
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from shared.config.reference import env_names, settings_classes
from shared.streams import DELIVERY_GROUP, LOCAL_DELIVERY, OUTBOUND, RELAY_GROUP
from tests.fixtures.binaries import require_binary

K8S = Path(__file__).resolve().parents[3] / "infra" / "k8s"
REDIS_CONF = K8S.parent / "redis" / "redis.conf"
# Kubernetes versions whose schemas the manifests must pass: the oldest with the port sysctl as a safe
# sysctl that is still maintained by cloud providers, and the newest the validator knows.
VERSIONS = ["1.29", kubernetes_validate.latest_version()]


def render(folder: str) -> list[dict]:
    kubectl = require_binary("kubectl", "kubernetes-client")
    out = subprocess.run(
        [kubectl, "kustomize", str(K8S / folder)], capture_output=True, text=True, check=True
    )
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.fixture(scope="module")
def site() -> list[dict]:
    return render("site")


@pytest.mark.parametrize("version", VERSIONS)
def test_site_passes_the_kubernetes_schemas(site: list[dict], version: str) -> None:
    assert {d["kind"] for d in site} >= {"Deployment", "StatefulSet", "Service", "ConfigMap", "Namespace"}
    for doc in site:
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_schema_check_catches_a_broken_manifest(site: list[dict]) -> None:
    broken = copy.deepcopy(by_kind(site, "Deployment")["relay"])
    broken["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRf"] = {"name": "x"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_every_setting_the_manifests_set_exists(site: list[dict]) -> None:
    known = {name for _, cls in settings_classes() for name in env_names(cls)}
    named = set(by_kind(site, "ConfigMap")["yubin-site"]["data"])
    for deployment in by_kind(site, "Deployment").values():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            named |= {variable["name"] for variable in container.get("env", [])}
    assert named - known == set()


def test_every_service_selects_a_deployment_that_opens_its_port(site: list[dict]) -> None:
    deployments = by_kind(site, "Deployment")
    for name, service in by_kind(site, "Service").items():
        if name == "redis":
            continue
        target = deployments[service["spec"]["selector"]["app.kubernetes.io/name"]]
        ports = {p["name"] for c in target["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports, name


def test_redis_keeps_the_durability_of_redis_conf(site: list[dict]) -> None:
    conf = dict(
        line.split(None, 1)
        for line in REDIS_CONF.read_text().splitlines()
        if line and not line.startswith("#")
    )
    args = by_kind(site, "StatefulSet")["redis"]["spec"]["template"]["spec"]["containers"][0]["args"]
    given = {args[i].removeprefix("--"): args[i + 1] for i in range(0, len(args), 2)}
    for setting in ("appendonly", "appendfsync", "maxmemory-policy"):
        assert given[setting] == conf[setting].strip(), setting


def test_keda_scales_the_workers_on_their_own_stream_and_group() -> None:
    docs = render("keda")
    deployments = by_kind(docs, "Deployment")
    expected = {"relay": (OUTBOUND, RELAY_GROUP), "delivery": (LOCAL_DELIVERY, DELIVERY_GROUP)}
    scaled = by_kind(docs, "ScaledObject")
    assert set(scaled) == set(expected)
    for name, scaled_object in scaled.items():
        assert scaled_object["spec"]["scaleTargetRef"]["name"] in deployments
        (trigger,) = scaled_object["spec"]["triggers"]
        metadata = trigger["metadata"]
        assert trigger["type"] == "redis-streams"
        assert (metadata["stream"], metadata["consumerGroup"]) == expected[name]
        assert int(metadata["lagCount"]) > 0
