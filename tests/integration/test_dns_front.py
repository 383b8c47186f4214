"""The lab's resolver front (yubin/lab/dns_front.py) as a real process between a real resolver and NSD:
it forwards, and answers SERVFAIL for the domains of dns-servfail faults kept in a real Redis."""

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dns.asyncquery
import dns.asyncresolver
import dns.message
import dns.rcode
import dns.resolver
import pytest
import redis

from shared.faults import FaultSpec, FaultStore
from shared.redis_client import connect
from shared.streams import TRACE
from tests.fixtures.nsd import NsdServer
from tests.fixtures.ports import free_udp_tcp_port, wait_for_port

HOST = "127.0.0.1"
REFRESH_WAIT_S = 1.2  # the front re-reads the faults at most once a second


@pytest.fixture
def front(nsd_server: NsdServer, redis_url: str, tmp_path: Path) -> Iterator[tuple[str, int]]:
    port = free_udp_tcp_port(HOST)
    argv = [
        sys.executable, "-m", "yubin.lab.dns_front", "--listen", f"{HOST}:{port}",
        "--upstream", nsd_server.address, "--site", f"beta.test={redis_url}",
    ]  # fmt: skip
    log = (tmp_path / "front.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(HOST, port, timeout=30, alive=lambda: proc.poll() is None)
        yield HOST, port
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0, (tmp_path / "front.log").read_text()
        log.close()


def resolver(front: tuple[str, int]) -> dns.asyncresolver.Resolver:
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [front[0]]
    resolver.port = front[1]
    resolver.lifetime = 5
    return resolver


async def add_fault(redis_url: str, **spec: object) -> str:
    client = connect(redis_url)
    try:
        fault = await FaultStore(client).add(FaultSpec.model_validate({"expires_in_s": 600, **spec}))
    finally:
        await client.aclose()
    await asyncio.sleep(REFRESH_WAIT_S)
    return fault.id


async def test_forwards_to_nsd(front: tuple[str, int]) -> None:
    mx = await resolver(front).resolve("beta.test", "MX")
    assert [r.exchange.to_text() for r in mx] == ["mx.beta.test."]


async def test_servfail_for_a_faulted_domain_and_names_under_it(
    front: tuple[str, int], redis_url: str
) -> None:
    fault_id = await add_fault(redis_url, kind="dns-servfail", domain="beta.test")
    for name, rdtype in (("beta.test", "MX"), ("mx.beta.test", "A")):
        with pytest.raises(dns.resolver.NoNameservers, match="SERVFAIL"):
            await resolver(front).resolve(name, rdtype)
    over_tcp = await dns.asyncquery.tcp(
        dns.message.make_query("beta.test", "MX"), front[0], port=front[1], timeout=5
    )
    assert over_tcp.rcode() == dns.rcode.SERVFAIL
    mx = await resolver(front).resolve("alpha.test", "MX")  # other domains still answer
    assert [r.exchange.to_text() for r in mx] == ["mx.alpha.test."]

    client = redis.Redis.from_url(redis_url)
    events = [json.loads(fields[b"data"]) for _, fields in client.xrange(TRACE)]
    struck = [e for e in events if e["service"] == "dns" and e["event"] == "fault"]
    assert {(e["detail"]["qname"], e["detail"]["fault_id"]) for e in struck} >= {
        ("beta.test", fault_id),
        ("mx.beta.test", fault_id),
    }

    async_client = connect(redis_url)
    assert await FaultStore(async_client).remove(fault_id) is not None
    await async_client.aclose()
    await asyncio.sleep(REFRESH_WAIT_S)
    mx = await resolver(front).resolve("beta.test", "MX")
    assert [r.exchange.to_text() for r in mx] == ["mx.beta.test."]
    client.close()


async def test_mx_faults_do_not_touch_dns(front: tuple[str, int], redis_url: str) -> None:
    await add_fault(redis_url, kind="smtp-reply", reply="451 4.3.0 x", stage="connect")
    mx = await resolver(front).resolve("beta.test", "MX")
    assert [r.exchange.to_text() for r in mx] == ["mx.beta.test."]
