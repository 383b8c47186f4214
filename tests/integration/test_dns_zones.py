"""NSD serves the project's zone files, and dnspython's async resolver reads MX records from it."""

import dns.asyncresolver
import dns.resolver
import pytest

from tests.fixtures.nsd import NsdServer


def resolver_for(nsd: NsdServer) -> dns.asyncresolver.Resolver:
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [nsd.host]
    resolver.port = nsd.port
    resolver.lifetime = 3
    return resolver


@pytest.mark.parametrize(
    ("domain", "exchange", "address"),
    [("alpha.test", "mx.alpha.test.", "127.0.3.10"), ("beta.test", "mx.beta.test.", "127.0.3.20")],
)
async def test_site_mx_and_address(nsd_server: NsdServer, domain: str, exchange: str, address: str) -> None:
    resolver = resolver_for(nsd_server)
    mx = await resolver.resolve(domain, "MX")
    assert [(r.preference, r.exchange.to_text()) for r in mx] == [(10, exchange)]
    a = await resolver.resolve(exchange, "A")
    assert [r.address for r in a] == [address]


async def test_null_mx(nsd_server: NsdServer) -> None:
    mx = await resolver_for(nsd_server).resolve("nullmx.test", "MX")
    assert [(r.preference, r.exchange.to_text()) for r in mx] == [(0, ".")]


async def test_no_mx_no_address(nsd_server: NsdServer) -> None:
    resolver = resolver_for(nsd_server)
    for rdtype in ("MX", "A"):
        with pytest.raises(dns.resolver.NoAnswer):
            await resolver.resolve("nomx.test", rdtype)


async def test_unknown_name_is_nxdomain(nsd_server: NsdServer) -> None:
    with pytest.raises(dns.resolver.NXDOMAIN):
        await resolver_for(nsd_server).resolve("nosuchhost.alpha.test", "MX")


async def test_factory_serves_custom_zone(nsd_factory) -> None:
    nsd = nsd_factory(
        {
            "example.test": "$ORIGIN example.test.\n$TTL 60\n"
            "@ IN SOA ns hostmaster 1 3600 600 86400 60\n@ IN NS ns\nns IN A 127.0.0.1\n"
            "@ IN MX 10 mx1\n@ IN MX 20 mx2\nmx1 IN A 127.0.0.2\nmx2 IN A 127.0.0.3\n"
        }
    )
    mx = await resolver_for(nsd).resolve("example.test", "MX")
    assert sorted((r.preference, r.exchange.to_text()) for r in mx) == [
        (10, "mx1.example.test."),
        (20, "mx2.example.test."),
    ]
