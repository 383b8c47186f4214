"""The relay's DNS cache: answers are reused for their TTL, negative answers for a short time only.

NSD is stopped after the first lookups: whatever the second round still answers came from the cache.
"""

import asyncio
import random

from services.relay.mx import DnsLookup, RouteError, make_resolver, resolve_route

ZONE = """$ORIGIN cached.test.
$TTL 3600
@           IN SOA ns hostmaster 1 3600 600 86400 3600
@           IN NS  ns
ns          IN A   127.0.5.53
@           IN MX  10 mx
mx          IN A   127.0.5.20
brief     1 IN MX  10 mx
"""

OWN = {"own_names": {"relay.alpha.test"}, "own_addresses": {"127.0.5.10"}}


def lookup(nsd, **cache) -> DnsLookup:
    return DnsLookup(make_resolver(nsd.host, nsd.port, 0.3, **cache), ipv6=True)


async def route(dns: DnsLookup, domain: str):
    return await resolve_route(dns, domain, rng=random.Random(0), **OWN)


async def outcome(dns: DnsLookup, domain: str) -> str:
    try:
        found = await route(dns, domain)
    except RouteError as exc:
        return exc.status
    return ",".join(a for h in found.hosts for a in h.addresses)


async def test_a_second_lookup_within_the_ttl_does_not_ask_the_server(nsd_factory) -> None:
    nsd = nsd_factory({"cached.test": ZONE})
    dns = lookup(nsd, cache_size=100, negative_ttl_s=60)
    assert await outcome(dns, "cached.test") == "127.0.5.20"  # MX, then A and AAAA (none) of mx
    assert await outcome(dns, "gone.cached.test") == "5.1.2"  # NXDOMAIN
    nsd.stop()
    assert await outcome(dns, "cached.test") == "127.0.5.20"
    assert await outcome(dns, "gone.cached.test") == "5.1.2"


async def test_without_a_cache_every_lookup_asks(nsd_factory) -> None:
    nsd = nsd_factory({"cached.test": ZONE})
    dns = lookup(nsd)  # cache_size 0
    assert await outcome(dns, "cached.test") == "127.0.5.20"
    nsd.stop()
    assert await outcome(dns, "cached.test") == "4.4.3"  # the server is gone: a temporary failure


async def test_expired_answers_are_asked_again(nsd_factory) -> None:
    nsd = nsd_factory({"cached.test": ZONE})
    # brief.cached.test's MX has a TTL of 1 s; negative answers are kept 0.5 s though the zone says 1 h.
    dns = lookup(nsd, cache_size=100, negative_ttl_s=0.5)
    assert await outcome(dns, "brief.cached.test") == "127.0.5.20"
    assert await outcome(dns, "gone.cached.test") == "5.1.2"
    nsd.stop()
    await asyncio.sleep(1.2)
    assert await outcome(dns, "brief.cached.test") == "4.4.3"
    assert await outcome(dns, "gone.cached.test") == "4.4.3"
    assert await outcome(dns, "cached.test") == "4.4.3"  # never asked before: nothing cached


async def test_negative_caching_can_be_turned_off(nsd_factory) -> None:
    nsd = nsd_factory({"cached.test": ZONE})
    dns = lookup(nsd, cache_size=100, negative_ttl_s=0)
    assert await outcome(dns, "gone.cached.test") == "5.1.2"
    nsd.stop()
    assert await outcome(dns, "gone.cached.test") == "4.4.3"
