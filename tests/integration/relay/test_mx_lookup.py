"""MX resolution against a real NSD: what is permanent, what is temporary, and loop detection."""

import random
import socket
from collections.abc import Iterator

import pytest

from services.relay.mx import DnsLookup, RouteError, make_resolver, resolve_route
from tests.fixtures.nsd import NsdServer


@pytest.fixture
def lookup(world_dns: NsdServer) -> DnsLookup:
    return DnsLookup(make_resolver(world_dns.host, world_dns.port, 2.0), ipv6=True)


async def route(lookup: DnsLookup, domain: str, **kwargs):
    options = {"own_names": {"relay.alpha.test"}, "own_addresses": {"127.0.5.10"}, **kwargs}
    return await resolve_route(lookup, domain, rng=random.Random(0), **options)


async def test_mx_hosts_in_preference_order_with_addresses(lookup) -> None:
    found = await route(lookup, "two-mx.world.test")
    assert [(h.preference, h.name, h.addresses) for h in found.hosts] == [
        (10, "mx-down.world.test", ["127.0.5.1"]),
        (20, "mx-second.world.test", ["127.0.5.2"]),
    ]
    assert not found.implicit


async def test_implicit_mx(lookup) -> None:
    found = await route(lookup, "amx.world.test")
    assert found.implicit
    assert [(h.name, h.addresses) for h in found.hosts] == [("amx.world.test", ["127.0.5.5"])]


@pytest.mark.parametrize(
    ("domain", "status", "words"),
    [
        ("nullmx.world.test", "5.1.10", "null MX"),
        ("gone.world.test", "5.1.2", "NXDOMAIN"),
        ("world.test", "5.4.4", "no MX and no address"),  # the zone apex: only SOA and NS
        ("noaddr.world.test", "5.4.4", "has an address"),
        ("loop.world.test", "5.4.6", "loops back to myself"),
    ],
)
async def test_permanent_failures(lookup, domain: str, status: str, words: str) -> None:
    with pytest.raises(RouteError) as failure:
        await route(lookup, domain)
    assert failure.value.permanent
    assert failure.value.status == status
    assert words in failure.value.message


async def test_our_host_name_as_mx_is_a_loop(lookup) -> None:
    with pytest.raises(RouteError, match="loops back"):
        await route(lookup, "later.world.test", own_names={"mx-later.world.test"}, own_addresses=set())


async def test_a_zone_the_server_does_not_serve_is_temporary(lookup) -> None:
    # NSD answers REFUSED: that says nothing about the domain, so try again later.
    with pytest.raises(RouteError) as failure:
        await route(lookup, "elsewhere.example")
    assert not failure.value.permanent
    assert failure.value.status == "4.4.3"


@pytest.fixture
def silent_dns() -> Iterator[tuple[str, int]]:
    """A UDP socket that takes queries and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()


async def test_a_dns_timeout_is_temporary(silent_dns) -> None:
    host, port = silent_dns
    lookup = DnsLookup(make_resolver(host, port, 0.3))
    with pytest.raises(RouteError) as failure:
        await route(lookup, "two-mx.world.test")
    assert not failure.value.permanent
