"""The compose lab's DNS: CoreDNS (and NSD in CI) serve infra/dns/compose-zones/, which must be exactly the
native zones (infra/dns/zones/) with the lab's own hosts moved to the compose network, and must agree with
the fixed addresses in docker-compose.yml.
"""

import importlib.util
import ipaddress
import re
from pathlib import Path

import dns.rdatatype
import dns.zone
import pytest

from tests.compose.compose_file import CI_OVERRIDE, COMPOSE_FILE, ROOT, load

NATIVE_DIR = ROOT / "infra" / "dns" / "zones"
COMPOSE_DIR = ROOT / "infra" / "dns" / "compose-zones"
COREFILE = ROOT / "infra" / "dns" / "Corefile"
NSD_CONF = ROOT / "infra" / "ci" / "nsd.conf"
SERVICES = load()["services"]


def _generator():
    spec = importlib.util.spec_from_file_location(
        "compose_zones", ROOT / "infra" / "docker" / "compose_zones.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATOR = _generator()


def read_zone(path: Path) -> dns.zone.Zone:
    return dns.zone.from_file(str(path), origin=path.name.removesuffix(".zone"), relativize=False)


def names(directory: Path) -> set[str]:
    return {path.name for path in directory.glob("*.zone")}


def test_compose_zones_are_generated_from_the_native_ones_and_current() -> None:
    assert names(COMPOSE_DIR) == names(NATIVE_DIR)
    for native in sorted(NATIVE_DIR.glob("*.zone")):
        assert (COMPOSE_DIR / native.name).read_text() == GENERATOR.compose_zone_text(native), (
            f"{native.name} changed: run .venv/bin/python infra/docker/compose_zones.py"
        )


@pytest.mark.parametrize("zone_file", sorted(names(NATIVE_DIR)))
def test_zones_differ_only_in_the_addresses_of_the_lab_hosts(zone_file: str) -> None:
    native, compose = read_zone(NATIVE_DIR / zone_file), read_zone(COMPOSE_DIR / zone_file)
    assert set(native.nodes) == set(compose.nodes)
    for name, node in native.nodes.items():
        for rdataset in node.rdatasets:
            other = compose.find_rdataset(name, rdataset.rdtype)
            if rdataset.rdtype != dns.rdatatype.A:
                assert other == rdataset, f"{name} {dns.rdatatype.to_text(rdataset.rdtype)} differs"
                continue
            moved = {str(GENERATOR.compose_address(ipaddress.ip_address(rr.address))) for rr in rdataset}
            assert {rr.address for rr in other} == moved, f"{name} A"
        assert len(compose.nodes[name].rdatasets) == len(node.rdatasets), name


def address_of(host: str) -> str:
    zone = read_zone(COMPOSE_DIR / f"{host.split('.', 1)[1]}.zone")
    return zone.find_rdataset(host + ".", dns.rdatatype.A)[0].address


def fixed_address(service: str) -> str:
    return SERVICES[service]["networks"]["lab"]["ipv4_address"]


def test_fixed_container_addresses_are_the_zones_addresses() -> None:
    assert address_of("mx.alpha.test") == fixed_address("mx-alpha")
    assert address_of("mx.beta.test") == fixed_address("mx-beta")
    for zone in COMPOSE_DIR.glob("*.zone"):
        assert address_of("ns." + zone.name.removesuffix(".zone")) == fixed_address("coredns")
    # down.test's MX is on the lab network where no container has its address: mail to it is deferred.
    down = address_of("mx.down.test")
    assert ipaddress.ip_address(down) in GENERATOR.COMPOSE_NET
    assert down not in {fixed_address(s) for s in ("mx-alpha", "mx-beta", "coredns")}
    ipam = load()["networks"]["lab"]["ipam"]["config"][0]
    assert ipaddress.ip_network(ipam["subnet"]) == GENERATOR.COMPOSE_NET
    assert ipaddress.ip_address(down) not in ipaddress.ip_network(ipam["ip_range"])


def mounted_dir(service: dict, container_dir: str) -> Path:
    for volume in service["volumes"]:
        source, target = volume.split(":")[:2]
        if target == container_dir:
            return COMPOSE_FILE.parent / source
    raise AssertionError(f"nothing mounted at {container_dir}")


def test_corefile_serves_every_zone_from_an_existing_file() -> None:
    blocks = re.findall(r"^([\w.-]+):53 \{\s*file (\S+)\s", COREFILE.read_text(), re.MULTILINE)
    assert blocks
    zones_dir = mounted_dir(SERVICES["coredns"], "/zones")
    for origin, path in blocks:
        assert path.startswith("/zones/"), path
        local = zones_dir / path.removeprefix("/zones/")
        assert local.is_file(), f"the Corefile names {path}, which does not exist ({local})"
        assert local.name == f"{origin}.zone"
        read_zone(local)
    assert {f"{origin}.zone" for origin, _ in blocks} == names(COMPOSE_DIR)


def test_the_nsd_stand_in_serves_the_same_zones_as_coredns() -> None:
    nsd = re.findall(r"name: (\S+)\s+zonefile: \"(\S+)\"", NSD_CONF.read_text())
    corefile = re.findall(r"^([\w.-]+):53 \{\s*file (\S+)\s", COREFILE.read_text(), re.MULTILINE)
    assert sorted(nsd) == sorted(corefile)
    ci_coredns = load(CI_OVERRIDE)["services"]["coredns"]
    assert mounted_dir(ci_coredns, "/zones") == mounted_dir(SERVICES["coredns"], "/zones")
