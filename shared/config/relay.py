"""Settings of the relay (`services.relay`): DNS, the SMTP client, and the retry schedule."""

import ipaddress
import json
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from shared.config.base import AuthClientSettings, BusSettings, ServiceSettings
from shared.retry_queue import RetryPolicy


class RelaySettings(ServiceSettings, BusSettings, AuthClientSettings):
    dns_server: str = Field(
        "127.0.0.1:53",
        description="The DNS server the relay asks for MX and address records, as HOST:PORT "
        "(the lab's resolver in front of NSD or, in compose, CoreDNS; NSD in tests).",
    )
    dns_timeout_s: float = Field(
        5.0, gt=0, description="How long one DNS lookup may take before it counts as a temporary failure."
    )
    dns_cache_size: int = Field(
        10000,
        ge=0,
        description="How many DNS answers the relay caches, each for its TTL (0 turns the cache off).",
    )
    dns_negative_cache_s: float = Field(
        30.0,
        ge=0,
        description="Negative answers (NXDOMAIN, no records of the type) are cached at most this long "
        "(seconds; at most the zone's negative TTL too; 0: not cached). Failures are never cached.",
    )
    relay_port: int = Field(
        25,
        ge=1,
        le=65535,
        description="TCP port of the remote MX servers (25; the lab and tests use a high port).",
    )
    relay_own_addresses: Annotated[list[str], NoDecode] = Field(
        [],
        description="Our own listening addresses (comma-separated). An MX resolving to one of them points "
        "back at us: mail for a domain we do not serve would loop, so it bounces (5.4.6).",
    )
    relay_ipv6: bool = Field(True, description="Also look up AAAA records and connect over IPv6.")
    relay_connect_timeout_s: float = Field(
        30.0, gt=0, description="Timeout for connecting to a remote MX and reading its greeting."
    )
    relay_command_timeout_s: float = Field(
        300.0, gt=0, description="Timeout for each SMTP command's reply (the end-of-DATA reply included)."
    )
    relay_source_address: str = Field(
        "",
        description="Bind outgoing SMTP connections to this local address (empty: the system picks). "
        "Used only for destinations of the same address family.",
    )
    relay_connection_cache_idle_s: float = Field(
        2.0,
        ge=0,
        description="How long an SMTP connection stays open after a message, waiting for the next one to "
        "the same server (seconds; 0 turns connection reuse off).",
    )
    relay_connection_cache_max: int = Field(
        32, ge=0, description="How many idle SMTP connections are kept at most, over all destinations."
    )
    relay_connection_reuse_limit_s: float = Field(
        300.0,
        gt=0,
        description="A connection older than this is not reused again (seconds), so no session lives forever.",
    )
    relay_starttls: bool = Field(True, description="Use STARTTLS when the remote server offers it.")
    relay_tls_verify: bool = Field(
        False,
        description="Require TLS with a verified certificate (Postfix's `smtp_tls_security_level = verify`): "
        "an untrusted certificate defers with 4.7.5, a server without STARTTLS with 4.7.4, and nothing is "
        "ever sent in plain text. Off by default: opportunistic TLS between MTAs (`may`), where a failed "
        "handshake is retried in plain text.",
    )
    relay_retry_schedule_s: Annotated[list[float], NoDecode] = Field(
        [60.0, 300.0, 900.0, 1800.0, 3600.0],
        description="Waits before the 1st, 2nd, ... retry after a temporary failure (seconds, "
        "comma-separated); the last one repeats.",
    )
    relay_retry_jitter: float = Field(
        0.1, ge=0, lt=1, description="Each wait is randomized by ± this fraction, so retries spread out."
    )
    relay_max_queue_lifetime_s: float = Field(
        5 * 24 * 3600.0,
        gt=0,
        description="How long after acceptance a message is retried; then it bounces (Action: failed, "
        "with the last temporary status).",
    )
    relay_delay_warning_s: float = Field(
        4 * 3600.0,
        ge=0,
        description="After this long undelivered, the sender gets one 'delayed' DSN (0 turns it off).",
    )
    relay_scheduler_max_sleep_s: float = Field(
        5.0,
        gt=0,
        description="The retry scheduler sleeps until the earliest due retry, but wakes at least this often "
        "(another replica may have scheduled an earlier one).",
    )
    relay_domains_cache_s: float = Field(
        60.0, ge=0, description="How long the local domain list from the auth service is cached."
    )
    relay_sent_record_ttl_s: int = Field(
        7 * 86400,
        ge=60,
        description="How long Redis keeps the recipients a remote server accepted for a message whose "
        "attempt was never finished (the relay died after the remote's 250), so the redelivered entry "
        "does not send to them again (seconds). Finished attempts delete it at once; it must outlast any "
        "redelivery of the entry (bus_max_deliveries x bus_claim_idle_ms).",
    )

    @field_validator("relay_own_addresses", "relay_retry_schedule_s", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        # "60,300,900" as documented; a JSON list ("[60, 300]") as the other services' list settings take.
        if isinstance(value, str) and value.strip().startswith("["):
            return json.loads(value)
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("relay_retry_schedule_s", mode="after")
    @classmethod
    def _schedule_not_empty(cls, value: list[float]) -> list[float]:
        if not value or any(wait <= 0 for wait in value):
            raise ValueError("the retry schedule needs at least one positive wait")
        return value

    @field_validator("relay_source_address", mode="after")
    @classmethod
    def _an_address(cls, value: str) -> str:
        if value:
            ipaddress.ip_address(value)  # raises ValueError: a typo must not fail every connection later
        return value

    @property
    def retry_policy(self) -> RetryPolicy:
        """The one retry policy (`shared.retry_queue`), with the relay's values."""
        return RetryPolicy(
            schedule_s=tuple(self.relay_retry_schedule_s),
            jitter=self.relay_retry_jitter,
            lifetime_s=self.relay_max_queue_lifetime_s,
            delay_warning_s=self.relay_delay_warning_s,
        )

    @property
    def dns_host_port(self) -> tuple[str, int]:
        host, _, port = self.dns_server.rpartition(":")
        if not host:
            return (self.dns_server.strip("[]"), 53)
        return (host.strip("[]"), int(port))
