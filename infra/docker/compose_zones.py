"""Write the compose lab's zone files (`infra/dns/compose-zones/`) from the native lab's (`infra/dns/zones/`).

The native lab puts each site on a loopback address (mx.alpha.test = 127.0.3.10); containers cannot reach
the host's loopback, so in compose the same hosts live on the `lab` network 10.127.3.0/24 with the same
last octet (mx.alpha.test = 10.127.3.10, a static address in docker-compose.yml). The compose zones are the
native ones with only those A records moved; `tests/compose/test_compose_zones.py` checks that they are
current. Run after editing a native zone: `.venv/bin/python infra/docker/compose_zones.py`.
"""

import ipaddress
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NATIVE_ZONES = ROOT / "infra" / "dns" / "zones"
COMPOSE_ZONES = ROOT / "infra" / "dns" / "compose-zones"

NATIVE_NET = ipaddress.ip_network("127.0.3.0/24")
COMPOSE_NET = ipaddress.ip_network("10.127.3.0/24")

_NATIVE_ADDRESS = re.compile(r"\b127\.0\.3\.(\d{1,3})\b")


def compose_address(native: ipaddress.IPv4Address) -> ipaddress.IPv4Address:
    """127.0.3.N → 10.127.3.N: the host keeps its number, the network changes."""
    if native not in NATIVE_NET:
        raise ValueError(f"{native} is not a lab address ({NATIVE_NET})")
    return COMPOSE_NET.network_address + (int(native) - int(NATIVE_NET.network_address))


def compose_zone_text(native_path: Path) -> str:
    text = native_path.read_text()
    moved = _NATIVE_ADDRESS.sub(lambda m: str(compose_address(ipaddress.ip_address(m.group(0)))), text)
    header = (
        f"; GENERATED from infra/dns/zones/{native_path.name} by infra/docker/compose_zones.py; do not edit.\n"
        f"; Same records; the lab's own hosts moved from {NATIVE_NET} to the compose network {COMPOSE_NET}.\n"
    )
    return header + moved


def main() -> int:
    COMPOSE_ZONES.mkdir(parents=True, exist_ok=True)
    native = sorted(NATIVE_ZONES.glob("*.zone"))
    for path in native:
        (COMPOSE_ZONES / path.name).write_text(compose_zone_text(path))
    stale = {p.name for p in COMPOSE_ZONES.glob("*.zone")} - {p.name for p in native}
    for name in sorted(stale):
        (COMPOSE_ZONES / name).unlink()
    print(f"wrote {len(native)} zone files to {COMPOSE_ZONES.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
