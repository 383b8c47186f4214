"""NSD's configuration for serving a folder of zone files (`<origin>.zone`) on one address and port.

Used by the native lab and by the test fixtures, so both run NSD the same way.
"""

from pathlib import Path


def zone_origin(path: Path) -> str:
    """`alpha.test.zone` serves `alpha.test`."""
    return path.name.removesuffix(".zone")


def nsd_config(directory: Path, zones_dir: Path, host: str, port: int) -> str:
    """NSD in the foreground without privileges: no chroot, no user switch, state kept in `directory`."""
    lines = [
        "server:",
        f"    ip-address: {host}",
        f"    port: {port}",
        '    username: ""',
        '    chroot: ""',
        f'    zonesdir: "{zones_dir}"',
        f'    pidfile: "{directory / "nsd.pid"}"',
        f'    xfrdfile: "{directory / "xfrd.state"}"',
        f'    zonelistfile: "{directory / "zone.list"}"',
        f'    xfrdir: "{directory}"',
        '    database: ""',
        f'    logfile: "{directory / "nsd.log"}"',
        "    server-count: 1",
        "    hide-version: yes",
        # NSD rate-limits answers by default; a burst of MX lookups from the relays must not be dropped.
        "    rrl-ratelimit: 0",
        "remote-control:",
        "    control-enable: no",
    ]
    for zone in sorted(zones_dir.glob("*.zone")):
        lines += ["zone:", f"    name: {zone_origin(zone)}", f'    zonefile: "{zone}"']
    return "\n".join(lines) + "\n"
