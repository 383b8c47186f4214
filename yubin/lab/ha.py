"""`yubin lab up --ha`: each site's Redis as a primary, a replica and three Sentinels (docs/ha.md).

The primary keeps the site's usual Redis address and port (`<site>-redis`); the replica (`<site>-redis-
replica`) and the Sentinels (`<site>-sentinel-1..3`) listen on the site's address too. Every node loads
infra/redis/redis.conf and infra/redis/replication.conf through its own configuration file in the lab
directory, because Sentinel rewrites those files on a failover (`CONFIG REWRITE`): a promoted replica
restarted by the supervisor, or by the next `lab up`, stays the primary instead of being turned back into
an empty replica of the old one. A file is written afresh only when its ports changed (e.g. `--free-ports`).
The services find the primary by asking the Sentinels (YUBIN_REDIS_SENTINELS).
"""

from dataclasses import dataclass, replace
from pathlib import Path

from yubin.lab.config import ROOT, LabConfig, Site, distinct_free_ports

REDIS_CONF = ROOT / "infra" / "redis" / "redis.conf"
REPLICATION_CONF = ROOT / "infra" / "redis" / "replication.conf"
MASTER_NAME = "yubin"
SENTINELS = 3
QUORUM = 2
# The lab fails over quickly so a demo (or a test) sees it within seconds; docs/ha.md discusses the trade.
DOWN_AFTER_MS = 1500
FAILOVER_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class HAPorts:
    replica: int
    sentinels: tuple[int, ...]


def with_ha(config: LabConfig, *, free_ports: bool = False) -> LabConfig:
    """`config` with a replica and Sentinels per site: on free ports, or next to the primary's port
    (replica = primary + 1, Sentinels from 26379: each site has its own loopback address)."""
    ports: dict[str, HAPorts] = {}
    for site in config.sites:
        if free_ports:
            replica, *sentinels = distinct_free_ports(site.address, 1 + SENTINELS)
        else:
            replica, sentinels = site.ports.redis + 1, [26379 + n for n in range(SENTINELS)]
        ports[site.domain] = HAPorts(replica, tuple(sentinels))
    return replace(config, ha_ports=ports)


def ha_dir(config: LabConfig, site: Site) -> Path:
    return config.site_dir(site) / "redis-ha"


def sentinels_setting(config: LabConfig, site: Site) -> str:
    """YUBIN_REDIS_SENTINELS for the site's services."""
    return ",".join(f"{site.address}:{port}" for port in config.ha_ports[site.domain].sentinels)


def service_env(config: LabConfig, site: Site) -> dict[str, str]:
    """The Sentinel settings of the site's services; empty Sentinels (one Redis) without --ha, as compose
    gives them without its `ha` profile."""
    sentinels = sentinels_setting(config, site) if config.ha_ports else ""
    return {"YUBIN_REDIS_SENTINELS": sentinels, "YUBIN_REDIS_SENTINEL_MASTER": MASTER_NAME}


def node_conf(config: LabConfig, site: Site, node: str) -> str:
    port = site.ports.redis if node == "primary" else config.ha_ports[site.domain].replica
    lines = [
        f"include {REDIS_CONF}",
        f"include {REPLICATION_CONF}",
        f"bind {site.address}",
        f"port {port}",
        # Connections between loopback addresses leave from 127.0.0.1: without this the primary (and so
        # the Sentinels) would know the replica by an address it does not listen on.
        f"replica-announce-ip {site.address}",
        f"dir {ha_dir(config, site) / node}",
        "daemonize no",
    ]
    if node == "replica":
        lines.append(f"replicaof {site.address} {site.ports.redis}")
    return "\n".join(lines) + "\n"


def sentinel_conf(config: LabConfig, site: Site, number: int) -> str:
    port = config.ha_ports[site.domain].sentinels[number - 1]
    return (
        f"bind {site.address}\n"
        f"port {port}\n"
        f"dir {ha_dir(config, site) / f'sentinel-{number}'}\n"
        "daemonize no\n"
        f"sentinel announce-ip {site.address}\n"  # (see replica-announce-ip above)
        f"sentinel monitor {MASTER_NAME} {site.address} {site.ports.redis} {QUORUM}\n"
        f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
        f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n"
        f"sentinel parallel-syncs {MASTER_NAME} 1\n"
    )


def conf_path(config: LabConfig, site: Site, name: str) -> Path:
    return ha_dir(config, site) / name / f"{name.split('-')[0]}.conf"


def _write_unless_current(path: Path, text: str) -> None:
    """Keep a file Redis or Sentinel rewrote (it holds a failover's outcome) unless its ports are stale."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        current = path.read_text()
        wanted = [line for line in text.splitlines() if line.startswith(("port ", "bind ", "include "))]
        if all(line in current.splitlines() for line in wanted):
            return
    path.write_text(text)


def prepare(config: LabConfig) -> None:
    """Write each node's and each Sentinel's configuration file (see the module docstring)."""
    for site in config.sites:
        for node in ("primary", "replica"):
            _write_unless_current(conf_path(config, site, node), node_conf(config, site, node))
        for number in range(1, SENTINELS + 1):
            _write_unless_current(
                conf_path(config, site, f"sentinel-{number}"), sentinel_conf(config, site, number)
            )


def redis_processes(config: LabConfig, site: Site, redis_server: str) -> list[dict]:
    """The site's Redis processes as ProcessSpec arguments (name, argv, listens)."""
    ports = config.ha_ports[site.domain]
    processes = [
        {
            "name": f"{site.name}-redis",
            "argv": (redis_server, str(conf_path(config, site, "primary"))),
            "listens": (site.address, site.ports.redis),
        },
        {
            "name": f"{site.name}-redis-replica",
            "argv": (redis_server, str(conf_path(config, site, "replica"))),
            "listens": (site.address, ports.replica),
        },
    ]
    for number, port in enumerate(ports.sentinels, start=1):
        processes.append(
            {
                "name": f"{site.name}-sentinel-{number}",
                "argv": (redis_server, str(conf_path(config, site, f"sentinel-{number}")), "--sentinel"),
                "listens": (site.address, port),
            }
        )
    return processes
