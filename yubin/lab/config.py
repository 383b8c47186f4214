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
# The relays' resolver (yubin/lab/dns_front.py: NSD's answers, or SERVFAIL for a faulted domain), on the
# DNS server's address one port up.
STANDARD_RESOLVER_PORT = 54
HIGH_RESOLVER_PORT = 5354

# Metrics (docs/metrics.md): every Yubin process serves /metrics on its site's address. With fixed ports
# the port is METRICS_BASE_PORT + the role's place in METRICS_ROLES (9801 auth ... 9806 pop3), plus
# METRICS_REPLICA_STRIDE for each further replica; with free ports `LabConfig.metrics_ports` holds them.
# Not 9100-9199 (node, haproxy, mysqld ... exporters) nor 9090 (the prometheus package's own service, which
# Debian starts when it is installed): a lab beside them must still start.
METRICS_BASE_PORT = 9800
METRICS_REPLICA_STRIDE = 10
METRICS_ROLES = ("auth", "submission", "mx", "relay", "delivery", "pop3")
PROMETHEUS_ADDRESS = "127.0.0.1"
PROMETHEUS_PORT = 9890


def metrics_key(domain: str, role: str, replica: int = 0) -> str:
    """How `lab info` names a process's metrics: `alpha.test/relay` (`alpha.test/relay-1` for a 2nd replica)."""
    return f"{domain}/{role}" + (f"-{replica}" if replica else "")


# The web console (yubin/console): loopback only, on Mailpit's well-known web port.
CONSOLE_ADDRESS = "127.0.0.1"
CONSOLE_PORT = 8025


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
    resolver_port: int
    settings: dict[str, str] = field(default_factory=dict)
    """Extra YUBIN_* settings (e.g. short retry delays for tests); each goes to the services that have it."""
    ha_ports: dict[str, Any] = field(default_factory=dict)
    """`--ha`: each site's replica and Sentinel ports (`yubin.lab.ha.HAPorts`) by domain; empty: one Redis."""
    replicas: dict[str, int] = field(default_factory=dict)
    """Processes per site of a service that scales (`--replicas relay=3`; yubin/lab/replicas.py); 1 if absent."""
    metrics_ports: dict[str, int] = field(default_factory=dict)
    """Metrics port by `metrics_key` where it is not the fixed one (`with_free_ports` fills it)."""
    prometheus_port: int | None = None
    """Run Prometheus against the lab on PROMETHEUS_ADDRESS at this port (`--prometheus`); None: do not."""
    console_address: str = CONSOLE_ADDRESS
    console_port: int = CONSOLE_PORT

    def replica_count(self, role: str) -> int:
        return self.replicas.get(role, 1)

    def metrics_processes(self) -> list[tuple[Site, str, int]]:
        """(site, role, replica) of every process that serves /metrics."""
        return [
            (site, role, replica)
            for site in self.sites
            for role in METRICS_ROLES
            for replica in range(self.replica_count(role))
        ]

    def metrics_port(self, site: Site, role: str, replica: int = 0) -> int:
        """The port of one process's /metrics: a function of the process, so each replica has its own."""
        fixed = METRICS_BASE_PORT + METRICS_REPLICA_STRIDE * replica + 1 + METRICS_ROLES.index(role)
        return self.metrics_ports.get(metrics_key(site.domain, role, replica), fixed)

    def metrics_url(self, site: Site, role: str, replica: int = 0) -> str:
        return f"http://{site.address}:{self.metrics_port(site, role, replica)}/metrics"

    @property
    def prometheus_dir(self) -> Path:
        return self.lab_dir / "prometheus"

    @property
    def prometheus_url(self) -> str | None:
        return None if self.prometheus_port is None else f"http://{PROMETHEUS_ADDRESS}:{self.prometheus_port}"

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
    prometheus: bool = False,
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
        resolver_port=STANDARD_RESOLVER_PORT if standard else HIGH_RESOLVER_PORT,
        settings=dict(settings or {}),
        prometheus_port=PROMETHEUS_PORT if prometheus else None,
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
    sites = []
    metrics_ports: dict[str, int] = {}
    for site in config.sites:
        processes = [(role, replica) for s, role, replica in config.metrics_processes() if s == site]
        ports = distinct_free_ports(site.address, count + len(processes))
        sites.append(replace(site, ports=SitePorts(*ports[:count])))
        metrics_ports |= {
            metrics_key(site.domain, role, replica): p
            for (role, replica), p in zip(processes, ports[count:], strict=True)
        }
    prometheus_port = None if config.prometheus_port is None else free_port(PROMETHEUS_ADDRESS)
    dns_port = free_dns_port(config.dns_address)
    resolver_port = free_dns_port(config.dns_address)
    while resolver_port == dns_port:
        resolver_port = free_dns_port(config.dns_address)
    return replace(
        config,
        sites=tuple(sites),
        dns_port=dns_port,
        resolver_port=resolver_port,
        metrics_ports=metrics_ports,
        prometheus_port=prometheus_port,
        console_port=free_port(config.console_address),
    )
