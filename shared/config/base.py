"""The common base of every service's settings."""

import socket

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Settings every service has. Environment variables are the field names upper-cased, prefixed `YUBIN_`."""

    model_config = SettingsConfigDict(env_prefix="YUBIN_", extra="ignore", frozen=True)

    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Redis holding this site's queues, bodies and user directory (AOF, appendfsync always). "
        "Ignored when YUBIN_REDIS_SENTINELS is set, except for its database number and password.",
    )
    # Replicated Redis (docs/ha.md). Unset: one Redis at YUBIN_REDIS_URL, as before.
    redis_sentinels: str = Field(
        "",
        description="Comma-separated host:port of the Redis Sentinels watching this site's Redis; when set, "
        "services ask them for the current primary and follow a failover (docs/ha.md). Empty: no Sentinel.",
    )
    redis_sentinel_master: str = Field(
        "yubin", description="The name the Sentinels know this site's primary by (`sentinel monitor <name>`)."
    )
    redis_min_replicas_ack: int | None = Field(
        None,
        ge=0,
        description="After every transaction (an accepted message, a consumer's final write) wait with WAIT "
        "until this many replicas have it; fewer within the timeout is an error (SMTP answers 451). Empty: "
        "1 with Sentinel, 0 (no WAIT) without.",
    )
    redis_replica_ack_timeout_ms: int = Field(
        2000,
        ge=1,
        le=9000,
        description="How long one WAIT waits for the replicas (milliseconds; below the 10 s socket timeout).",
    )
    hostname: str = Field(
        default_factory=socket.getfqdn,
        description="This mail server's host name: SMTP banner, EHLO, Received headers, DSN Reporting-MTA.",
    )
    log_level: str = Field("INFO", description="Python log level for the JSON logs on stderr.")

    @property
    def redis_sentinel_addresses(self) -> list[tuple[str, int]]:
        """YUBIN_REDIS_SENTINELS as (host, port) pairs; [] when Sentinel is not used."""
        addresses = []
        for item in self.redis_sentinels.split(","):
            if item.strip():
                host, _, port = item.strip().rpartition(":")
                addresses.append((host.strip("[]"), int(port)))
        return addresses

    @property
    def redis_replicas_to_wait(self) -> int:
        if self.redis_min_replicas_ack is not None:
            return self.redis_min_replicas_ack
        return 1 if self.redis_sentinel_addresses else 0


class BusSettings(BaseSettings):
    """How a service consumes a Redis stream (see `shared.bus`)."""

    model_config = SettingsConfigDict(env_prefix="YUBIN_", extra="ignore", frozen=True)

    bus_block_ms: int = Field(
        5000, ge=10, description="How long one XREADGROUP blocks waiting for new entries (milliseconds)."
    )
    bus_claim_idle_ms: int = Field(
        60_000,
        ge=100,
        description="An entry pending this long with no heartbeat from its consumer is presumed orphaned "
        "(the consumer died) and reclaimed by another consumer with XAUTOCLAIM (milliseconds).",
    )
    bus_max_deliveries: int = Field(
        5,
        ge=1,
        description="After this many deliveries that failed for a reason other than an outage (a bug, an "
        "entry that cannot be handled) an entry is moved to the dead-letter stream.",
    )
    bus_outage_backoff_max_s: float = Field(
        30.0,
        gt=0,
        description="Longest wait between two tries of an entry whose handler failed because a dependency "
        "(Redis, the auth service, DNS, the disk) is down; the wait doubles from 0.2 s up to this (seconds). "
        "Such tries never count toward the dead-letter limit.",
    )
    concurrency: int = Field(16, ge=1, description="How many entries one replica works on at once.")


class AuthClientSettings(BaseSettings):
    """How a service reaches the user-auth service's internal API."""

    model_config = SettingsConfigDict(env_prefix="YUBIN_", extra="ignore", frozen=True)

    auth_url: str = Field("http://127.0.0.1:8080", description="Base URL of the user-auth service.")
    service_token: SecretStr = Field(
        description="Bearer token for the auth service's internal API (shared by the services of one site)."
    )
    auth_timeout_s: float = Field(
        5.0, gt=0, description="Timeout of one request to the auth service (seconds)."
    )
    auth_cache_ttl_s: float = Field(
        5.0,
        ge=0,
        description="How long a recipient lookup (found or not) and the list of local domains are cached "
        "(seconds; 0 = no cache). A user deleted, disabled or created within it may be judged by the old "
        "answer. Logins are never cached.",
    )
    auth_cache_max_entries: int = Field(
        10_000,
        ge=1,
        description="Most recipient lookups kept in the cache; the least recently used go first.",
    )
