"""`python -m services.relay`: consume OUTBOUND, deliver to remote MX servers, retry, bounce.

Every replica joins the RELAY_GROUP consumer group (so replicas share the stream) and runs a retry
scheduler (so deferred mail comes back even if only one replica is left). SIGTERM: stop reading, finish
the deliveries in flight, exit 0.
"""

import asyncio
import logging

from redis.exceptions import RedisError

from services.relay.connection_cache import ConnectionCache
from services.relay.delivery import DomainDelivery
from services.relay.handler import RelayHandler
from services.relay.local_domains import LocalDomains
from services.relay.mx import DnsLookup, make_resolver
from services.relay.retry import relay_retry_queue
from services.relay.smtp_session import SessionOptions, client_tls_context
from shared.auth_client import AuthClient
from shared.bus import Consumer, run_consumer
from shared.config.relay import RelaySettings
from shared.lifecycle import stop_on_signals
from shared.log import setup_logging
from shared.redis_client import connect_site
from shared.streams import OUTBOUND, RELAY_GROUP

log = logging.getLogger("services.relay")


def connection_cache(settings: RelaySettings) -> ConnectionCache:
    return ConnectionCache(
        idle_s=settings.relay_connection_cache_idle_s,
        max_idle=settings.relay_connection_cache_max,
        reuse_limit_s=settings.relay_connection_reuse_limit_s,
        quit_timeout_s=settings.relay_connect_timeout_s,
    )


def domain_delivery(settings: RelaySettings, connections: ConnectionCache) -> DomainDelivery:
    dns_host, dns_port = settings.dns_host_port
    resolver = make_resolver(
        dns_host,
        dns_port,
        settings.dns_timeout_s,
        cache_size=settings.dns_cache_size,
        negative_ttl_s=settings.dns_negative_cache_s,
    )
    return DomainDelivery(
        DnsLookup(resolver, ipv6=settings.relay_ipv6),
        SessionOptions(
            port=settings.relay_port,
            helo_name=settings.hostname,
            connect_timeout=settings.relay_connect_timeout_s,
            command_timeout=settings.relay_command_timeout_s,
            starttls=settings.relay_starttls,
            tls_verify=settings.relay_tls_verify,
            tls_context=client_tls_context(settings.relay_tls_verify),
            source_address=settings.relay_source_address or None,
        ),
        own_names={settings.hostname.lower().rstrip(".")},
        own_addresses=set(settings.relay_own_addresses),
        connections=connections,
    )


async def run(settings: RelaySettings) -> None:
    stop = stop_on_signals()
    redis = connect_site(settings)
    consumer = Consumer(redis, OUTBOUND, RELAY_GROUP, settings)
    retry = relay_retry_queue(redis)
    scheduler = asyncio.create_task(retry.run(stop, settings.relay_scheduler_max_sleep_s))
    connections = connection_cache(settings)
    try:
        await consumer.ensure_group()  # so the group exists once we say "started"
    except RedisError as exc:
        log.warning("Redis unavailable at start; waiting for it", extra={"error": str(exc)})
    try:
        async with AuthClient(settings) as auth:
            handler = RelayHandler(
                redis,
                consumer,
                settings,
                domain_delivery(settings, connections),
                retry,
                LocalDomains(auth, settings.relay_domains_cache_s),
            )
            log.info(
                "relay started",
                extra={
                    "consumer": consumer.name,
                    "dns_server": settings.dns_server,
                    "relay_port": settings.relay_port,
                    "concurrency": settings.concurrency,
                    "source_address": settings.relay_source_address or None,
                    "connection_cache_idle_s": settings.relay_connection_cache_idle_s,
                },
            )
            await run_consumer(consumer, handler, stop)
    finally:
        stop.set()
        await scheduler
        await connections.close()  # after the in-flight deliveries: QUIT what waits idle
        await redis.aclose()
    log.info("relay stopped")


def main() -> None:
    settings = RelaySettings()
    setup_logging("relay", settings.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
