"""The lab's resolver: a small DNS front that forwards every query to NSD, except that it answers SERVFAIL
for the domains of the `dns-servfail` faults (shared/faults.py, docs/faults.md).

    python -m yubin.lab.dns_front --listen 127.0.3.53:5354 --upstream 127.0.3.53:5353 \\
        --site alpha.test=redis://127.0.3.10:6379/0 --site beta.test=redis://127.0.3.20:6379/0

The relays of both sites ask it (`YUBIN_DNS_SERVER`), as a site's mail server asks its recursive
resolver; NSD stays the authoritative server of the `.test` zones. Docker compose runs it as the
`resolver` service, in front of CoreDNS. DNS is shared by both sites, so a
fault added at either site's admin API is applied to every query: the faults of all sites are read, at
most once a second, and each SERVFAIL answered is written to the trace stream of the site that owns the
fault. UDP and TCP (a client that gets a truncated UDP answer asks again over TCP).
"""

import argparse
import asyncio
import logging
import random
import struct
import time

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.bus import publish
from shared.faults import Fault, FaultKind, FaultStore
from shared.lifecycle import stop_on_signals
from shared.log import setup_logging
from shared.models.envelope import utcnow
from shared.models.trace import TraceEvent
from shared.redis_client import connect
from shared.streams import TRACE, TRACE_MAXLEN

log = logging.getLogger("yubin.lab.dns_front")

UPSTREAM_TIMEOUT_S = 3.0
MAX_TCP_MESSAGE = 65535


def host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"HOST:PORT expected, got {text!r}")
    return host, int(port)


def site_redis(text: str) -> tuple[str, str]:
    site, sep, url = text.partition("=")
    if not sep or not url.startswith("redis://"):
        raise argparse.ArgumentTypeError(f"SITE=redis://... expected, got {text!r}")
    return site, url


class SiteFaults:
    """The dns-servfail faults of every site, re-read at most once per `refresh_s`."""

    def __init__(self, sites: dict[str, Redis], refresh_s: float = 1.0) -> None:
        self.sites = sites
        self.refresh_s = refresh_s
        self._faults: list[tuple[str, Fault]] = []
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()
        self._unreadable: set[str] = set()

    async def current(self) -> list[tuple[str, Fault]]:
        if time.monotonic() - self._read_at >= self.refresh_s:
            async with self._lock:
                if time.monotonic() - self._read_at >= self.refresh_s:
                    await self._refresh()
        now = utcnow()
        return [(site, f) for site, f in self._faults if f.expires_at > now]

    async def _refresh(self) -> None:
        faults: list[tuple[str, Fault]] = []
        for site, redis in self.sites.items():
            try:
                active = await FaultStore(redis).active()
            except RedisError as exc:
                # That site's faults are not applied while its Redis is away; DNS goes on.
                if site not in self._unreadable:
                    log.warning("cannot read faults", extra={"site": site, "error": str(exc)})
                self._unreadable.add(site)
                continue
            self._unreadable.discard(site)
            faults += [(site, f) for f in active if f.kind is FaultKind.DNS_SERVFAIL]
        self._faults = faults
        self._read_at = time.monotonic()

    async def striking(self, name: str) -> tuple[str, Fault] | None:
        for site, fault in await self.current():
            if fault.hits_name(name) and (fault.share >= 1 or random.random() < fault.share):
                return site, fault
        return None


class DnsFront:
    def __init__(self, faults: SiteFaults, upstream: tuple[str, int]) -> None:
        self.faults = faults
        self.upstream = upstream

    async def answer(self, wire: bytes, client: str, transport: str) -> bytes | None:
        """The answer to one query, or None to stay silent (not a query we can parse)."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if query.question:
            question = query.question[0]
            name = question.name.to_text(omit_final_dot=True)
            struck = await self.faults.striking(name)
            if struck is not None:
                await self._record(struck, name, dns.rdatatype.to_text(question.rdtype), client)
                response = dns.message.make_response(query)
                response.set_rcode(dns.rcode.SERVFAIL)
                return response.to_wire()
        host, port = self.upstream
        try:
            if transport == "udp":
                reply = await dns.asyncquery.udp(query, host, port=port, timeout=UPSTREAM_TIMEOUT_S)
            else:
                reply = await dns.asyncquery.tcp(query, host, port=port, timeout=UPSTREAM_TIMEOUT_S)
        except (dns.exception.DNSException, OSError) as exc:
            log.warning("upstream failed", extra={"error": repr(exc), "upstream": f"{host}:{port}"})
            response = dns.message.make_response(query)
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()
        return reply.to_wire()

    async def _record(self, struck: tuple[str, Fault], name: str, rdtype: str, client: str) -> None:
        site, fault = struck
        detail = {
            "fault_id": fault.id,
            "kind": fault.kind.value,
            "qname": name,
            "qtype": rdtype,
            "client": client,
        }
        log.info("fault injected", extra={"site": site, **detail})
        try:
            await publish(
                self.faults.sites[site],
                TRACE,
                TraceEvent(queue_id="", service="dns", event="fault", detail=detail),
                maxlen=TRACE_MAXLEN,
            )
        except RedisError as exc:
            log.warning("could not trace a fault", extra={"error": str(exc)})


class UdpFront(asyncio.DatagramProtocol):
    def __init__(self, front: DnsFront) -> None:
        self.front = front
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram transport (typeshed says Base)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        task = asyncio.get_running_loop().create_task(self._reply(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _reply(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            answer = await self.front.answer(data, addr[0], "udp")
        except Exception:
            log.exception("query failed", extra={"client": addr[0]})
            return
        if answer is not None and self.transport is not None:
            self.transport.sendto(answer, addr)


async def serve_tcp_client(
    front: DnsFront, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    client = writer.get_extra_info("peername")[0]
    try:
        while True:
            (length,) = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), 10))
            wire = await asyncio.wait_for(reader.readexactly(length), 10)
            answer = await front.answer(wire, client, "tcp")
            if answer is None or len(answer) > MAX_TCP_MESSAGE:
                break
            writer.write(struct.pack("!H", len(answer)) + answer)
            await writer.drain()
    except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()


async def run(listen: tuple[str, int], upstream: tuple[str, int], sites: dict[str, str]) -> None:
    stop = stop_on_signals()
    redis = {site: connect(url, socket_timeout=2.0) for site, url in sites.items()}
    front = DnsFront(SiteFaults(redis), upstream)
    loop = asyncio.get_running_loop()
    udp, _ = await loop.create_datagram_endpoint(lambda: UdpFront(front), local_addr=listen)
    tcp = await asyncio.start_server(lambda r, w: serve_tcp_client(front, r, w), *listen)
    log.info(
        "listening", extra={"listen": f"{listen[0]}:{listen[1]}", "upstream": f"{upstream[0]}:{upstream[1]}"}
    )
    try:
        await stop.wait()
    finally:
        udp.close()
        tcp.close()
        for client in redis.values():
            await client.aclose()
        log.info("stopped")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--listen", type=host_port, required=True, help="HOST:PORT to answer on (UDP and TCP)"
    )
    parser.add_argument("--upstream", type=host_port, required=True, help="HOST:PORT of NSD")
    parser.add_argument(
        "--site", type=site_redis, action="append", default=[], help="SITE=REDIS_URL whose faults apply"
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    setup_logging("dns-front", args.log_level)
    asyncio.run(run(args.listen, args.upstream, dict(args.site)))


if __name__ == "__main__":
    main()
