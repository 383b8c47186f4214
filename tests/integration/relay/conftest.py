"""The relay's test world: an NSD serving `world.test`, SMTP sinks on 127.0.5.x, the relay as a process.

Every sink listens on the same port (the relay's YUBIN_RELAY_PORT), each on its own loopback address, so
the DNS answer alone decides where mail goes, as on the Internet.
"""

import asyncio
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from redis.asyncio import Redis

from services.relay.retry import RETRY_KEY
from shared.body_store import RedisBodyStore
from shared.enqueue import enqueue
from shared.models import Envelope
from shared.redis_client import connect
from shared.streams import LOCAL_DELIVERY, OUTBOUND
from tests.fixtures.auth import AuthService, start_auth_service
from tests.fixtures.nsd import NsdServer
from tests.fixtures.ports import free_port
from tests.fixtures.processes import ServiceProcess
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.tls import self_signed_certificate
from tests.integration.relay.sinks import Sink, SinkBehaviour

RELAY_HOSTNAME = "relay.alpha.test"
LOCAL_DOMAIN = "alpha.test"
SENDER = "alice@alpha.test"

# Addresses: .1 is an MX where nothing listens; .10 is "our own" address (YUBIN_RELAY_OWN_ADDRESSES).
WORLD = """$ORIGIN world.test.
$TTL 60
@           IN SOA ns hostmaster 1 3600 600 86400 60
@           IN NS  ns
ns          IN A   127.0.5.53
; two MX hosts, the preferred one down
two-mx      IN MX  10 mx-down
two-mx      IN MX  20 mx-second
mx-down     IN A   127.0.5.1
mx-second   IN A   127.0.5.2
; two MX hosts of equal preference
equal       IN MX  10 mx-a
equal       IN MX  10 mx-b
mx-a        IN A   127.0.5.3
mx-b        IN A   127.0.5.4
; no MX: the domain's own address is the mail host
amx         IN A   127.0.5.5
; null MX (RFC 7505)
nullmx      IN MX  0 .
; one MX each for the retry, rejection, stall and TLS scenarios
later       IN MX  10 mx-later
mx-later    IN A   127.0.5.6
picky       IN MX  10 mx-picky
mx-picky    IN A   127.0.5.7
down        IN MX  10 mx-down
slow        IN MX  10 mx-slow
mx-slow     IN A   127.0.5.9
tls         IN MX  10 mx-tls
mx-tls      IN A   127.0.5.11
; servers without SMTPUTF8 (.12), without 8BITMIME (.13), with SMTPUTF8 (.14)
plain       IN MX  10 mx-plain
mx-plain    IN A   127.0.5.12
xn--bcher-kva IN MX 10 mx-plain
old         IN MX  10 mx-old
mx-old      IN A   127.0.5.13
intl        IN MX  10 mx-intl
mx-intl     IN A   127.0.5.14
; an MX host that does not exist
noaddr      IN MX  10 nowhere
; an MX that is us
loop        IN MX  10 mx-loop
mx-loop     IN A   127.0.5.10
"""


def world_nsd(directory: Path) -> NsdServer:
    zones = directory / "zones"
    zones.mkdir(parents=True)
    (zones / "world.test.zone").write_text(WORLD)
    return NsdServer(directory / "nsd", zones).start()


@pytest.fixture(scope="package")
def world_dns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NsdServer]:
    """NSD serving `world.test`, shared by the relay tests (the zone never changes)."""
    nsd = world_nsd(tmp_path_factory.mktemp("world-dns"))
    yield nsd
    nsd.stop()


@pytest.fixture(scope="package")
def site_auth(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthService]:
    """The auth service (as `auth_service` starts it), shared by the relay tests: starting one per test
    would double their run time. It keeps no state outside Redis, so `redis_url` flushing between tests
    is all the isolation needed; `world` adds the local domain again each time."""
    logs = tmp_path_factory.mktemp("site-auth")
    started: list[ServiceProcess] = []

    def factory(
        module: str, env: dict[str, str], *, wait_port=None, name: str | None = None
    ) -> ServiceProcess:
        process = ServiceProcess(module, env, logs / f"{name or 'service'}.log").start(wait_port)
        started.append(process)
        return process

    service = start_auth_service(factory, redis_server.url)
    yield service
    service.admin.close()
    for process in started:
        process.stop()


@dataclass
class RelayWorld:
    redis_url: str
    nsd: NsdServer
    port: int
    base_env: dict[str, str]
    service_factory: Callable[..., ServiceProcess]
    tmp_path: Path
    sinks: list[Sink] = field(default_factory=list)

    def sink(self, address: str, behaviour: SinkBehaviour | None = None, *, tls: bool = False) -> Sink:
        context = self._tls_context() if tls else None
        sink = Sink(address, self.port, behaviour, tls_context=context).start()
        self.sinks.append(sink)
        return sink

    def relay(self, **overrides: str) -> ServiceProcess:
        env = {**self.base_env, **overrides}
        process = self.service_factory("services.relay", env, name="relay")
        process.wait_for_log("relay started")
        return process

    def _tls_context(self) -> ssl.SSLContext:
        directory = self.tmp_path / "sink-tls"
        if directory.exists():
            cert, key = directory / "cert.pem", directory / "key.pem"
        else:
            directory.mkdir()
            cert, key = self_signed_certificate(directory, "mx-tls.world.test")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        return context


@pytest.fixture
def world(
    redis_url: str,
    site_auth: AuthService,
    world_dns: NsdServer,
    service_factory: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> Iterator[RelayWorld]:
    site_auth.add_domain(LOCAL_DOMAIN)  # redis_url has just flushed the directory
    env = {
        **site_auth.env,
        "YUBIN_HOSTNAME": RELAY_HOSTNAME,
        "YUBIN_LOG_LEVEL": "INFO",
        "YUBIN_RELAY_OWN_ADDRESSES": "127.0.5.10",
        "YUBIN_RELAY_IPV6": "false",
        "YUBIN_DNS_TIMEOUT_S": "2",
        "YUBIN_RELAY_CONNECT_TIMEOUT_S": "2",
        "YUBIN_RELAY_COMMAND_TIMEOUT_S": "10",
        "YUBIN_RELAY_RETRY_SCHEDULE_S": "0.3",
        "YUBIN_RELAY_RETRY_JITTER": "0",
        "YUBIN_RELAY_SCHEDULER_MAX_SLEEP_S": "0.5",
        "YUBIN_BUS_BLOCK_MS": "200",
        "YUBIN_BUS_CLAIM_IDLE_MS": "1000",
    }
    env["YUBIN_DNS_SERVER"] = world_dns.address
    env["YUBIN_RELAY_PORT"] = str(free_port())
    world = RelayWorld(
        redis_url=redis_url,
        nsd=world_dns,
        port=int(env["YUBIN_RELAY_PORT"]),
        base_env=env,
        service_factory=service_factory,
        tmp_path=tmp_path,
    )
    yield world
    for sink in world.sinks:
        sink.stop()


@pytest.fixture
async def redis(world: RelayWorld) -> Iterator[Redis]:
    client = connect(world.redis_url)
    yield client
    await client.aclose()


def message(recipients: list[str], subject: str = "hello", sender: str = SENDER) -> bytes:
    return (
        f"From: {sender or 'MAILER-DAEMON@alpha.test'}\r\nTo: {', '.join(recipients)}\r\n"
        f"Subject: {subject}\r\nMessage-ID: <{subject}@alpha.test>\r\n\r\nHello, world.\r\n.dot line\r\n"
    ).encode()


async def submit(
    redis: Redis,
    recipients: list[str],
    subject: str = "hello",
    sender: str = SENDER,
    body: bytes | None = None,
) -> Envelope:
    """What submission does for remote recipients: body and OUTBOUND envelope in one transaction."""
    envelope = Envelope(
        sender=sender, recipients=recipients, body_id="", message_id=f"<{subject}@alpha.test>"
    )
    raw = body if body is not None else message(recipients, subject, sender)
    published = await enqueue(redis, raw, {OUTBOUND: envelope})
    return published[OUTBOUND]


async def wait_until(predicate, timeout: float = 20.0, what: str = "condition"):
    """Poll an async predicate until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        result = await predicate()
        if result:
            return result
        await asyncio.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


async def local_notices(redis: Redis) -> list[tuple[Envelope, bytes | None]]:
    """Envelopes on LOCAL_DELIVERY (bounces to our own users) with their stored bodies."""
    bodies = RedisBodyStore(redis)
    found = []
    for _, fields in await redis.xrange(LOCAL_DELIVERY):
        envelope = Envelope.model_validate_json(fields[b"data"])
        found.append((envelope, await bodies.get(envelope.body_id)))
    return found


async def retry_count(redis: Redis) -> int:
    return int(await redis.zcard(RETRY_KEY))


async def received(sink: Sink, count: int = 1, timeout: float = 20.0) -> list:
    async def enough():
        messages = sink.messages
        return messages if len(messages) >= count else None

    return await wait_until(enough, timeout, f"{count} message(s) at {sink.address}")


@dataclass
class Dsn:
    envelope: Envelope | None
    report: object
    per_message: object
    recipients: dict[str, object]

    @property
    def action(self) -> set[str]:
        return {block["Action"] for block in self.recipients.values()}


def parse_dsn(envelope: Envelope | None, body: bytes) -> Dsn:
    import email
    from email import policy

    report = email.message_from_bytes(body, policy=policy.default)
    assert report.get_content_type() == "multipart/report"
    status = next(p for p in report.iter_parts() if p.get_content_type() == "message/delivery-status")
    per_message, *blocks = status.get_payload()
    # Keyed by the address as written after its type: "rfc822; a@b" → a@b, "utf-8; j\x{F6}rg@b" → j\x{F6}rg@b.
    recipients = {block["Final-Recipient"].partition("; ")[2]: block for block in blocks}
    return Dsn(envelope, report, per_message, recipients)


async def dsns(redis: Redis, count: int, timeout: float = 20.0) -> list[Dsn]:
    """Wait for `count` DSNs to our local sender on LOCAL_DELIVERY."""

    async def enough():
        found = await local_notices(redis)
        return found if len(found) >= count else None

    found = await wait_until(enough, timeout, f"{count} DSN(s) on the local delivery stream")
    return [parse_dsn(envelope, body) for envelope, body in found]
