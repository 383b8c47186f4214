"""What a lab is: its directory, its sites (domain, loopback address, ports) and its DNS server.

The addresses come from the zone files in `infra/dns/zones/` (the A record of each site's MX host and of
the name server), so the lab, the zones and the README can never disagree.
"""

import os
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import dns.rdatatype
import dns.zone

ROOT = Path(__file__).resolve().parents[2]
ZONES_DIR = ROOT / "infra" / "dns" / "zones"
SITE_DOMAINS = ("alpha.test", "beta.test")
DEMO_USERS = {"alpha.test": "alice", "beta.test": "bob"}
DEFAULT_LAB_DIR = Path("lab")
LAB_DIR_ENV = "YUBIN_LAB_DIR"


@dataclass(frozen=True)
class SitePorts:
    submission: int
    mx: int
    pop3: int
    admin: int
    redis: int


# Ports when the lab runs as root (the standard ones) and otherwise (unprivileged ports above 1024).
STANDARD_PORTS = SitePorts(submission=587, mx=25, pop3=110, admin=8080, redis=6379)
HIGH_PORTS = SitePorts(submission=5870, mx=2525, pop3=1100, admin=8080, redis=6379)
STANDARD_DNS_PORT = 53
HIGH_DNS_PORT = 5353


@dataclass(frozen=True)
class Site:
    domain: str
    address: str
    ports: SitePorts
    demo_users: tuple[str, ...]

    @property
    def name(self) -> str:
        """`alpha` for alpha.test: the prefix of this site's process names."""
        return self.domain.split(".", 1)[0]

    @property
    def postmaster(self) -> str:
        """Who reads the site's postmaster@ and abuse@: its first demo user (alice, bob)."""
        return f"{self.demo_users[0]}@{self.domain}"

    @property
    def mx_host(self) -> str:
        return f"mx.{self.domain}"

    @property
    def redis_url(self) -> str:
        return f"redis://{self.address}:{self.ports.redis}/0"

    @property
    def admin_url(self) -> str:
        return f"http://{self.address}:{self.ports.admin}"


@dataclass(frozen=True)
class LabConfig:
    lab_dir: Path
    sites: tuple[Site, ...]
    dns_address: str
    dns_port: int
    settings: dict[str, str] = field(default_factory=dict)
    """Extra YUBIN_* settings (e.g. short retry delays for tests); each goes to the services that have it."""
    ha_ports: dict[str, Any] = field(default_factory=dict)
    """`--ha`: each site's replica and Sentinel ports (`yubin.lab.ha.HAPorts`) by domain; empty: one Redis."""
    replicas: dict[str, int] = field(default_factory=dict)
    """Processes per site of a service that scales (`--replicas relay=3`; yubin/lab/replicas.py); 1 if absent."""

    def replica_count(self, role: str) -> int:
        return self.replicas.get(role, 1)

    def site(self, domain: str) -> Site:
        for site in self.sites:
            if site.domain == domain:
                return site
        raise KeyError(domain)

    def peer(self, site: Site) -> Site:
        """The other site: its MX port is where this site's relay connects (YUBIN_RELAY_PORT)."""
        return next(other for other in self.sites if other is not site)

    def site_dir(self, site: Site) -> Path:
        return self.lab_dir / site.domain

    def mail_root(self, site: Site) -> Path:
        return self.site_dir(site) / "mail"

    @property
    def tls_dir(self) -> Path:
        return self.lab_dir / "tls"

    @property
    def cert_file(self) -> Path:
        return self.tls_dir / "cert.pem"

    @property
    def key_file(self) -> Path:
        return self.tls_dir / "key.pem"

    @property
    def dns_dir(self) -> Path:
        return self.lab_dir / "dns"

    @property
    def info_file(self) -> Path:
        return self.lab_dir / "lab-info.json"

    @property
    def state_file(self) -> Path:
        """The supervisor's view of the running lab: every process's pid, state and restart count."""
        return self.lab_dir / "processes.json"

    @property
    def procfile(self) -> Path:
        return self.lab_dir / "Procfile"


def zone_addresses(zones_dir: Path = ZONES_DIR) -> dict[str, str]:
    """Every A record of the zone files, by fully qualified name without the final dot."""
    addresses: dict[str, str] = {}
    for path in sorted(zones_dir.glob("*.zone")):
        origin = path.name.removesuffix(".zone")
        zone = dns.zone.from_file(str(path), origin=origin, relativize=False)
        for name, rdataset in zone.iterate_rdatasets(dns.rdatatype.A):
            addresses[name.to_text(omit_final_dot=True)] = rdataset[0].address
    return addresses


def default_lab_dir() -> Path:
    return Path(os.environ.get(LAB_DIR_ENV) or DEFAULT_LAB_DIR)


def running_as_root() -> bool:
    return os.geteuid() == 0


def lab_config(
    lab_dir: Path | None = None,
    *,
    standard_ports: bool | None = None,
    settings: dict[str, str] | None = None,
    replicas: dict[str, int] | None = None,
) -> LabConfig:
    """The lab with fixed ports: the standard ones as root, high ones otherwise."""
    addresses = zone_addresses()
    standard = running_as_root() if standard_ports is None else standard_ports
    ports = STANDARD_PORTS if standard else HIGH_PORTS
    sites = tuple(
        Site(domain, addresses[f"mx.{domain}"], ports, (DEMO_USERS[domain],)) for domain in SITE_DOMAINS
    )
    return LabConfig(
        lab_dir=(lab_dir or default_lab_dir()).resolve(),
        sites=sites,
        dns_address=addresses["ns.alpha.test"],
        dns_port=STANDARD_DNS_PORT if standard else HIGH_DNS_PORT,
        settings=dict(settings or {}),
        replicas=dict(replicas or {}),
    )


def free_port(host: str, kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def free_dns_port(host: str) -> int:
    """A port free for both TCP and UDP (DNS listens on both)."""
    for _ in range(50):
        port = free_port(host)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no port free for both TCP and UDP on {host}")


def distinct_free_ports(host: str, count: int) -> list[int]:
    # All sockets stay bound until every port is chosen, so the kernel cannot hand out one port twice.
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def with_free_ports(config: LabConfig) -> LabConfig:
    """The same lab on ports nobody uses right now, so tests and benchmarks can run beside `make lab`."""
    count = len(SitePorts.__dataclass_fields__)
    sites = tuple(
        replace(site, ports=SitePorts(*distinct_free_ports(site.address, count))) for site in config.sites
    )
    return replace(config, sites=sites, dns_port=free_dns_port(config.dns_address))
