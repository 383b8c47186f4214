"""Where to send mail for a domain: MX lookup per RFC 5321 §5.1, null MX (RFC 7505), loop detection.

`resolve_route` returns the hosts to try, in order, each with its addresses; or raises `RouteError`, which
says whether the failure is permanent (bounce now) or temporary (retry later):

- MX records: sorted by preference, equal preferences shuffled (so load spreads over them).
- No MX records but the name exists: the domain itself is the one host (the "implicit MX").
- A null MX (`MX 0 .`): the domain accepts no mail → permanent 5.1.10.
- NXDOMAIN → permanent 5.1.2. SERVFAIL, REFUSED or a timeout → temporary 4.4.3.
- Our own name or address among the MX hosts: that entry and every less preferred one are dropped (we
  would be relaying to ourselves); if nothing is left the mail loops back to us → permanent 5.4.6.

Answers are cached (`AnswerCache`) for their TTL, negative ones (NXDOMAIN, no records) for a short time at
most; failures are never cached, so the outcomes above are the same with or without the cache. In front of
it `DnsLookup` keeps the records of positive answers until the same expiration: a resolve through
dnspython, even from its cache, costs more CPU than the rest of routing a message.
"""

import random
import time
from dataclasses import dataclass, field

import dns.asyncresolver
import dns.exception
import dns.resolver


class RouteError(Exception):
    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    @property
    def permanent(self) -> bool:
        return self.status.startswith("5")


@dataclass(frozen=True)
class MxHost:
    preference: int
    name: str
    addresses: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Route:
    domain: str
    hosts: list[MxHost]
    implicit: bool = False
    """True when the domain has no MX records and its own addresses are used."""

    def describe(self) -> list[dict[str, object]]:
        """The answer as the trace shows it."""
        return [{"preference": h.preference, "host": h.name, "addresses": h.addresses} for h in self.hosts]


class AnswerCache(dns.resolver.LRUCache):
    """dnspython's LRU answer cache (entries live as long as the answer's TTL says), with negative answers
    (NXDOMAIN, no records of the type) kept at most `negative_ttl_s`: the SOA minimum of a zone may be
    hours, and a domain that was just created should not bounce for that long. Failures (SERVFAIL,
    timeouts) are never cached: dnspython does not store them."""

    def __init__(self, max_size: int, negative_ttl_s: float) -> None:
        super().__init__(max_size)
        self.negative_ttl_s = negative_ttl_s

    def put(self, key: dns.resolver.CacheKey, value: dns.resolver.Answer) -> None:
        if value.rrset is None:
            if self.negative_ttl_s <= 0:
                return
            value.expiration = min(value.expiration, time.time() + self.negative_ttl_s)
        super().put(key, value)


def make_resolver(
    host: str, port: int, timeout: float, *, cache_size: int = 0, negative_ttl_s: float = 0.0
) -> dns.asyncresolver.Resolver:
    # configure=False: never read /etc/resolv.conf; the relay asks exactly the server in its settings.
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [host]
    resolver.port = port
    resolver.lifetime = timeout
    resolver.timeout = timeout
    if cache_size > 0:
        resolver.cache = AnswerCache(cache_size, negative_ttl_s)
    return resolver


_shuffler = random.Random()  # one, not one per lookup: seeding from os.urandom costs a system call


def order_mx(records: list[tuple[int, str]], rng: random.Random | None = None) -> list[tuple[int, str]]:
    """RFC 5321 §5.1: most preferred (lowest number) first; hosts of equal preference in random order."""
    rng = rng or _shuffler
    shuffled = list(records)
    rng.shuffle(shuffled)
    return sorted(shuffled, key=lambda record: record[0])  # sorted() is stable: the shuffle survives ties


def drop_self_and_worse(hosts: list[MxHost], own_names: set[str], own_addresses: set[str]) -> list[MxHost]:
    """RFC 5321 §5.1: if we are one of the MX hosts, only more preferred hosts may be tried."""
    mine = [
        h.preference
        for h in hosts
        if h.name.rstrip(".").lower() in own_names or own_addresses.intersection(h.addresses)
    ]
    if not mine:
        return hosts
    return [h for h in hosts if h.preference < min(mine)]


class DnsLookup:
    """dnspython queries, translated into the relay's permanent/temporary outcomes."""

    def __init__(self, resolver: dns.asyncresolver.Resolver, *, ipv6: bool = True) -> None:
        self.resolver = resolver
        self.ipv6 = ipv6
        cache = resolver.cache
        self._memo_size = cache.max_size if isinstance(cache, dns.resolver.LRUCache) else 0
        self._memo: dict[tuple[str, str], tuple[float, list[str] | list[tuple[int, str]]]] = {}

    def _remembered(self, name: str, rdtype: str) -> list[str] | list[tuple[int, str]] | None:
        hit = self._memo.get((name, rdtype))
        if hit is None:
            return None
        if hit[0] <= time.time():  # dnspython's own expiry test: the answer's TTL is over
            del self._memo[(name, rdtype)]
            return None
        return hit[1]

    def _remember(
        self, name: str, rdtype: str, answer: dns.resolver.Answer, records: list[str] | list[tuple[int, str]]
    ) -> None:
        if not self._memo_size:
            return  # no DNS cache configured: every lookup asks
        if len(self._memo) >= self._memo_size:
            del self._memo[next(iter(self._memo))]  # the oldest entry
        self._memo[(name, rdtype)] = (answer.expiration, records)

    async def _query(self, name: str, rdtype: str) -> dns.resolver.Answer | None:
        """The answer, or None when the name exists but has no records of this type."""
        try:
            return await self.resolver.resolve(name, rdtype, search=False)
        except dns.resolver.NoAnswer:
            return None
        except dns.resolver.NXDOMAIN as exc:
            raise RouteError(f"Host or domain name not found: {name} (NXDOMAIN)", "5.1.2") from exc
        except dns.exception.DNSException as exc:
            # SERVFAIL/REFUSED (NoNameservers), timeouts, garbled answers: says nothing about the domain.
            raise RouteError(f"DNS lookup of {name}/{rdtype} failed: {exc}", "4.4.3") from exc

    async def addresses(self, name: str) -> list[str]:
        """IPv4 then IPv6 addresses; a failed AAAA lookup does not spoil good A records."""
        found: list[str] = []
        failure: RouteError | None = None
        for rdtype in ("A", "AAAA") if self.ipv6 else ("A",):
            remembered = self._remembered(name, rdtype)
            if remembered is not None:
                found += remembered  # type: ignore[arg-type]
                continue
            try:
                answer = await self._query(name, rdtype)
            except RouteError as exc:
                failure = failure or exc
                continue
            if answer is not None:
                addresses = [record.address for record in answer]
                self._remember(name, rdtype, answer, addresses)
                found += addresses
        if not found and failure is not None:
            raise failure
        return found

    async def mx(self, domain: str) -> list[tuple[int, str]] | None:
        remembered = self._remembered(domain, "MX")
        if remembered is not None:
            return list(remembered)  # type: ignore[arg-type]
        answer = await self._query(domain, "MX")
        if answer is None:
            return None
        records = [(record.preference, record.exchange.to_text()) for record in answer]
        self._remember(domain, "MX", answer, records)
        return list(records)


async def resolve_route(
    lookup: DnsLookup,
    domain: str,
    *,
    own_names: set[str],
    own_addresses: set[str],
    rng: random.Random | None = None,
) -> Route:
    records = await lookup.mx(domain)
    temporary: RouteError | None = None  # the first temporary failure resolving an MX host's address
    if records is None:
        # RFC 5321 §5.1: no MX → the domain is its own mail host (the "implicit MX").
        addresses = await lookup.addresses(domain)
        if not addresses:
            raise RouteError(f"{domain} has no MX and no address records", "5.4.4")
        hosts = [MxHost(0, domain, addresses)]
        implicit = True
    else:
        if all(name == "." for _, name in records):
            raise RouteError(f"{domain} does not accept mail (null MX, RFC 7505)", "5.1.10")
        hosts = []
        for preference, name in order_mx([r for r in records if r[1] != "."], rng):
            try:
                hosts.append(MxHost(preference, name.rstrip("."), await lookup.addresses(name)))
            except RouteError as exc:
                # One MX host we cannot resolve must not stop delivery to the others.
                if not exc.permanent and temporary is None:
                    temporary = exc
                hosts.append(MxHost(preference, name.rstrip(".")))
        implicit = False

    usable = drop_self_and_worse(hosts, own_names, own_addresses)
    if not usable:
        raise RouteError(f"mail for {domain} loops back to myself", "5.4.6")
    if not any(h.addresses for h in usable):
        if temporary is not None:
            raise RouteError(f"no MX host of {domain} could be resolved: {temporary.message}", "4.4.3")
        raise RouteError(f"no MX host of {domain} has an address", "5.4.4")
    return Route(domain, [h for h in usable if h.addresses], implicit)
