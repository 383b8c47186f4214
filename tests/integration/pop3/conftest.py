"""A POP3 site for tests: a real redis-server, the real auth service, the real POP3 process, Maildirs filled
the way delivery fills them (same file names, LF line endings).

Starting the auth service and creating users costs seconds (argon2), so one site serves the whole package
and every test gets its own fresh user (`user`), hence its own mailbox. The auth service there counts
failures per username only loosely per IP, so tests' failed logins from 127.0.0.1 never lock each other
out. Tests that need another configuration start their own POP3 process (`start_pop3`) against the
same site.
"""

import itertools
import os
import poplib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shared.maildir import delivery_unique, mailbox_path, maildir_name, to_disk, wire_size
from shared.models import new_queue_id
from tests.fixtures.auth import AuthService, start_auth_service
from tests.fixtures.ports import free_port
from tests.fixtures.processes import ServiceProcess
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.tls import self_signed_certificate

HOST = "127.0.0.1"
PASSWORD = "correct-horse-battery"
PAIR_FREE_FAILURES = 3
"""The site's auth service delays a username on one address after this many failures (the throttling
tests need it); the first delay is 10 minutes, so none runs out during the tests."""


@dataclass
class Pop3Server:
    process: ServiceProcess
    port: int
    host: str = HOST

    def connect(self) -> poplib.POP3:
        return poplib.POP3(self.host, self.port, timeout=10)

    def login(self, user: str, password: str = PASSWORD) -> poplib.POP3:
        client = self.connect()
        client.user(user)
        client.pass_(password)
        return client


@dataclass
class Pop3Site:
    auth: AuthService
    redis_url: str
    mail_root: Path
    tls_cert: Path
    tls_key: Path
    server: Pop3Server | None = None
    _delivered: int = field(default=0)

    def pop3_env(self, port: int, **overrides: str) -> dict[str, str]:
        return {
            **self.auth.env,
            "YUBIN_POP3_HOST": HOST,
            "YUBIN_POP3_PORT": str(port),
            "YUBIN_MAIL_ROOT": str(self.mail_root),
            "YUBIN_POP3_TLS_CERT": str(self.tls_cert),
            "YUBIN_POP3_TLS_KEY": str(self.tls_key),
            "YUBIN_POP3_ALLOW_PLAINTEXT_AUTH": "true",
            "YUBIN_POP3_AUTH_FAILURE_DELAY_S": "0",
            "YUBIN_POP3_LOCK_TTL_MS": "3000",
            "YUBIN_POP3_SHUTDOWN_GRACE_S": "2",
            "YUBIN_HOSTNAME": "pop.alpha.test",
            "YUBIN_LOG_LEVEL": "DEBUG",
            **overrides,
        }

    def deliver(self, address: str, message: bytes, queue_id: str | None = None) -> Path:
        """Put `message` (CRLF, as received over SMTP) into the Maildir exactly as delivery names it
        (after `queue_id`, a new one if not given). Each message gets an mtime one second after the
        previous, so their order is certain."""
        directory = mailbox_path(self.mail_root, address)
        for sub in ("tmp", "new", "cur"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        stored = to_disk(message)
        self._delivered += 1
        when = 1_700_000_000 + self._delivered
        unique = delivery_unique(queue_id or new_queue_id(), address)
        name = maildir_name(unique, "mx.alpha.test", len(stored), wire_size(stored), when)
        tmp = directory / "tmp" / name
        tmp.write_bytes(stored)
        os.utime(tmp, (when, when))
        target = directory / "new" / name
        tmp.rename(target)
        return target

    def files(self, address: str, sub: str) -> list[str]:
        path = mailbox_path(self.mail_root, address) / sub
        return sorted(os.listdir(path)) if path.is_dir() else []


@pytest.fixture(scope="package")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pop3Site]:
    """Redis, auth (alpha.test) and one POP3 server (STLS offered, plaintext allowed) for the package."""
    base = tmp_path_factory.mktemp("pop3-site")
    redis = RedisServer(base / "redis").start()
    processes: list[ServiceProcess] = []

    def factory(
        module: str, env: dict[str, str], *, wait_port: tuple[str, int] | None = None, name: str | None = None
    ) -> ServiceProcess:
        process = ServiceProcess(module, env, base / "logs" / f"{name or module}-{len(processes)}.log")
        processes.append(process)
        return process.start(wait_port)

    try:
        auth = start_auth_service(
            factory,
            redis.url,
            YUBIN_AUTH_PAIR_FREE_FAILURES=str(PAIR_FREE_FAILURES),
            YUBIN_AUTH_DELAY_BASE_S="600",
            # Every test logs in from 127.0.0.1: keep its own and the unknown-address counters out of it.
            YUBIN_AUTH_IP_FREE_FAILURES="100000",
            YUBIN_AUTH_USER_FREE_FAILURES="100000",
            # Cheap hashes: the site creates a user per test.
            YUBIN_AUTH_ARGON2_TIME_COST="1",
            YUBIN_AUTH_ARGON2_MEMORY_KIB="1024",
            YUBIN_AUTH_ARGON2_PARALLELISM="1",
        )
        auth.add_domain("alpha.test")
        cert, key = self_signed_certificate(base)
        mail_root = base / "mail"
        mail_root.mkdir()
        site = Pop3Site(auth=auth, redis_url=redis.url, mail_root=mail_root, tls_cert=cert, tls_key=key)
        port = free_port()
        site.server = Pop3Server(factory("services.pop3", site.pop3_env(port), wait_port=(HOST, port)), port)
        yield site
        auth.admin.close()
    finally:
        for process in reversed(processes):
            process.stop()
        redis.stop()


_users = itertools.count(1)


@pytest.fixture
def user(site: Pop3Site) -> str:
    """A fresh user with an empty mailbox, password PASSWORD."""
    address = f"user{next(_users)}-{os.urandom(3).hex()}@alpha.test"
    site.auth.add_user(address, PASSWORD)
    return address


@pytest.fixture
def pop3(site: Pop3Site) -> Pop3Server:
    """The site's POP3 server: STLS offered, plaintext logins allowed (as on the lab's loopback)."""
    assert site.server is not None
    return site.server


@pytest.fixture
def start_pop3(site: Pop3Site, service_factory: Callable[..., ServiceProcess]) -> Callable[..., Pop3Server]:
    """Start another POP3 process on the site (stopped after the test); settings as YUBIN_* overrides."""

    def start(**overrides: str) -> Pop3Server:
        port = free_port()
        process = service_factory("services.pop3", site.pop3_env(port, **overrides), wait_port=(HOST, port))
        return Pop3Server(process, port)

    return start
