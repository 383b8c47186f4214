"""The console's scraper against real /metrics endpoints on loopback (prometheus_client's own server, as
every service runs it): replicas summed, a restart, and answers too large or never coming kept bounded."""

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server

from tests.fixtures.ports import free_port
from yubin.console.rates import Rates
from yubin.console.scrape import MAX_BYTES, Scraper, addresses

SITES = ["alpha.test", "beta.test"]


class Relay:
    """A relay process's metrics: its own registry, served on a free loopback port."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.attempts = Counter(
            "relay_attempts", "Attempts.", ["result"], namespace="yubin", registry=self.registry
        )
        self.attempts.labels("delivered")
        self.port = free_port()
        self.server, self.thread = start_http_server(self.port, "127.0.0.1", self.registry)
        self.url = f"http://127.0.0.1:{self.port}/metrics"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def relays() -> Iterator[list[Relay]]:
    started = [Relay(), Relay()]
    yield started
    for relay in started:
        relay.stop()


@pytest.fixture
async def misbehaving() -> AsyncIterator[dict[str, str]]:
    """One server that answers with more than a MiB, one that never answers."""

    async def huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        for _ in range(MAX_BYTES // 65536 + 2):
            writer.write(b"#" * 65535 + b"\n")
            await writer.drain()
        writer.close()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        await asyncio.sleep(3600)

    servers = [
        await asyncio.start_server(huge, "127.0.0.1", 0),
        await asyncio.start_server(silent, "127.0.0.1", 0),
    ]
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    yield {name: f"http://127.0.0.1:{p}/metrics" for name, p in zip(("huge", "silent"), ports, strict=True)}
    for server in servers:
        server.close()


async def test_replicas_are_scraped_each_and_summed(relays: list[Relay]) -> None:
    rates = Rates(SITES)
    scraper = Scraper({"alpha.test/relay": [r.url for r in relays]}, rates, interval_s=3)
    try:
        await scraper.scrape_round()
        relays[0].attempts.labels("delivered").inc(2)
        relays[1].attempts.labels("delivered").inc(3)
        await scraper.scrape_round()
        stats = rates.snapshot(rates.started + 60)
        assert stats["alpha.test/relay"]["count"] == 5
        assert stats["alpha.test"]["targets"] == {"up": 2, "down": 0}
        assert stats["beta.test/relay"]["rate"] is None
    finally:
        await scraper.stop()


async def test_a_replica_that_stopped_is_named_and_the_others_still_count(relays: list[Relay]) -> None:
    rates = Rates(SITES)
    scraper = Scraper({"alpha.test/relay": [r.url for r in relays]}, rates, interval_s=3)
    try:
        await scraper.scrape_round()
        relays[1].stop()
        relays[0].attempts.labels("delivered").inc()
        await scraper.scrape_round()
        stats = rates.snapshot(rates.started + 60)
        assert stats["alpha.test/relay"]["count"] == 1
        assert stats["alpha.test"]["targets"] == {"up": 1, "down": 1}
        assert relays[1].url in rates.errors
    finally:
        await scraper.stop()


async def test_an_answer_too_large_or_never_coming_is_an_error_of_its_target(
    relays: list[Relay], misbehaving: dict[str, str]
) -> None:
    rates = Rates(SITES)
    targets = {"alpha.test/relay": [relays[0].url], "beta.test/relay": list(misbehaving.values())}
    scraper = Scraper(targets, rates, interval_s=1, timeout_s=1)
    try:
        await asyncio.wait_for(scraper.scrape_round(), 10)  # bounded: the silent one does not hold it
        assert rates.targets == {"alpha.test": {"up": 1, "down": 0}, "beta.test": {"up": 0, "down": 2}}
        assert "TooLarge" in rates.errors[misbehaving["huge"]]
        assert "Timeout" in rates.errors[misbehaving["silent"]]
    finally:
        await scraper.stop()


async def test_a_host_name_is_scraped_at_each_of_its_addresses() -> None:
    assert "127.0.0.1" in await addresses("localhost", 80)
    assert await addresses("127.0.3.10", 80) == ["127.0.3.10"]
