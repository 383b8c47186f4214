"""The SMTP reception session (either role) on an in-memory connection, with in-memory dependencies.

The session, its handler, the role policies and `LocalDomains` are the real ones; only what they reach
over the network is replaced: `MemoryDirectory` answers logins, recipient and domain lookups as the auth
service would (same request limits, `AuthUnavailable` when told to fail), `MemoryQueue` records what would
have gone into Redis (or raises RedisError when told to). `SmtpConversation` sends one chunk of client
bytes, runs the loop until the session waits again, and hands back the reply lines it wrote.
"""

import asyncio
import functools
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from redis.exceptions import ConnectionError as RedisConnectionError

from services.submission.acceptance import MessageQueue
from services.submission.connections import SessionRegistry
from services.submission.handler import ReceptionHandler
from services.submission.local_domains import LocalDomains
from services.submission.mx_policy import MxPolicy
from services.submission.policy import RolePolicy
from services.submission.session import ReceptionSMTP
from services.submission.submission_policy import SubmissionPolicy
from shared.auth_client import AuthUnavailable
from shared.config.submission import SmtpRole, SubmissionSettings
from shared.models import Envelope, RecipientInfo, TraceEvent, VerifyRequest, VerifyResult
from tests.fixtures.memory_transport import MemoryTransport, settle

DOMAIN = "example.test"
USER = f"alice@{DOMAIN}"
PASSWORD = "correct horse"
DISABLED_USER = f"bob@{DOMAIN}"
USERS = {USER: PASSWORD, DISABLED_USER: "bob's password"}
ENABLED = {USER}

REPLY_LINE = re.compile(rb"^([2-5][0-5][0-9])([ -])(.*)$", re.DOTALL)


class MemoryDirectory:
    """The auth service's answers (LoginVerifier, RecipientDirectory, DomainDirectory) from a dict."""

    def __init__(self, failing_calls: frozenset[int] = frozenset()) -> None:
        self.failing_calls = failing_calls  # the n-th call (0-based) raises AuthUnavailable
        self.calls = 0

    def _maybe_fail(self) -> None:
        call, self.calls = self.calls, self.calls + 1
        if call in self.failing_calls:
            raise AuthUnavailable("fuzz: auth service down")

    async def verify(self, username: str, password: str, service: str, client_ip: str | None) -> VerifyResult:
        VerifyRequest(username=username, password=password, service=service, client_ip=client_ip)
        await asyncio.sleep(0)
        self._maybe_fail()
        address = username.lower()
        if USERS.get(address) == password and address in ENABLED:
            return VerifyResult(ok=True, address=address)
        return VerifyResult(ok=False)

    async def recipient(self, address: str) -> RecipientInfo:
        await asyncio.sleep(0)
        self._maybe_fail()
        return RecipientInfo(address=address, exists=address in USERS, enabled=address in ENABLED)

    async def domains(self) -> list[str]:
        await asyncio.sleep(0)
        self._maybe_fail()
        return [DOMAIN]


@dataclass
class StoredMessage:
    body: bytes
    routes: dict[str, Envelope]
    trace: TraceEvent


@dataclass
class MemoryQueue:
    """A MessageQueue that keeps what it is given; the n-th enqueue in `failing_calls` raises."""

    failing_calls: frozenset[int] = frozenset()
    stored: list[StoredMessage] = field(default_factory=list)
    calls: int = 0

    async def enqueue(self, body: bytes, routes: dict[str, Envelope], trace: TraceEvent) -> None:
        await asyncio.sleep(0)
        call, self.calls = self.calls, self.calls + 1
        if call in self.failing_calls:
            raise RedisConnectionError("fuzz: Redis down")
        self.stored.append(StoredMessage(body, routes, trace))


@functools.cache  # building settings (environment, validation) costs more than a whole conversation
def smtp_settings(role: SmtpRole, *, max_errors: int, allow_plaintext_auth: bool) -> SubmissionSettings:
    return SubmissionSettings(
        service_token="fuzz",  # type: ignore[arg-type]
        smtp_role=role,
        hostname="mx.example.test",
        max_message_size=2048,
        max_line_length=100,
        max_recipients=3,
        max_errors=max_errors,
        allow_plaintext_auth=allow_plaintext_auth,
        idle_timeout_s=3600,
        session_timeout_s=3600,
    )


def role_policy(role: SmtpRole, directory: MemoryDirectory) -> RolePolicy:
    domains = LocalDomains(directory, refresh_s=3600)
    return MxPolicy(directory, domains) if role is SmtpRole.MX else SubmissionPolicy(directory, domains)


class RecordingHandler(ReceptionHandler):
    """The real handler; an exception that reaches aiosmtpd's catch-all is a bug the fuzzer found."""

    def __init__(self, settings: SubmissionSettings, policy: RolePolicy, queue: MessageQueue) -> None:
        super().__init__(settings, policy, queue)
        self.exceptions: list[BaseException] = []

    async def handle_exception(self, error: Exception) -> str:
        self.exceptions.append(error)
        return await super().handle_exception(error)


@dataclass(frozen=True)
class Reply:
    code: int
    lines: list[bytes]  # without CRLF

    @property
    def text(self) -> bytes:
        return b"\n".join(self.lines)


def parse_replies(output: bytes) -> list[Reply]:
    """Split what the server wrote into replies, asserting RFC 5321 §4.2 syntax on every line."""
    if not output:
        return []
    assert output.endswith(b"\r\n"), f"output does not end with CRLF: {output[-80:]!r}"
    replies: list[Reply] = []
    pending: list[bytes] = []
    pending_code: bytes | None = None
    for line in output[:-2].split(b"\r\n"):
        assert b"\n" not in line and b"\r" not in line, f"bare CR or LF in a reply line: {line!r}"
        match = REPLY_LINE.match(line)
        assert match is not None, f"not a reply line: {line!r}"
        code, separator, _ = match.groups()
        assert pending_code in (None, code), f"a multi-line reply changes its code: {line!r}"
        pending.append(line)
        pending_code = code
        if separator == b" ":
            replies.append(Reply(int(code), pending))
            pending, pending_code = [], None
    assert not pending, f"a multi-line reply without its last line: {pending!r}"
    return replies


class SmtpConversation:
    def __init__(
        self,
        role: SmtpRole,
        *,
        max_errors: int = 20,
        allow_plaintext_auth: bool = True,
        directory_failures: frozenset[int] = frozenset(),
        queue_failures: frozenset[int] = frozenset(),
    ) -> None:
        self.role = role
        self.settings = smtp_settings(role, max_errors=max_errors, allow_plaintext_auth=allow_plaintext_auth)
        self.directory = MemoryDirectory(directory_failures)
        self.queue = MemoryQueue(queue_failures)
        policy = role_policy(role, self.directory)
        self.handler = RecordingHandler(self.settings, policy, self.queue)
        self.session = ReceptionSMTP(
            self.handler,
            settings=self.settings,
            policy=policy,
            auth=self.directory,
            registry=SessionRegistry(10),
        )
        self.transport = MemoryTransport(self.session)

    @property
    def closed(self) -> bool:
        return self.transport.closed

    async def _settle(self) -> None:
        task = self.session.command_task
        assert task is not None
        await settle(self.session.command_reader, task)

    async def start(self) -> list[Reply]:
        self.session.connection_made(self.transport)
        await self._settle()
        return parse_replies(self.transport.take())

    async def send(self, data: bytes, cuts: Iterable[int] = ()) -> list[Reply]:
        """Send `data` in pieces cut at `cuts` (as TCP may deliver it), each given time to be read."""
        assert not self.closed
        start = 0
        for end in [*sorted(set(cuts)), len(data)]:
            if start < end <= len(data) and not self.closed:
                self.session.data_received(data[start:end])
                await self._settle()
                start = end
        return parse_replies(self.transport.take())

    async def end(self) -> list[Reply]:
        """The client goes away (EOF, then the transport closes), as a socket would report it."""
        if not self.closed:
            if not self.session.eof_received():
                self.transport.close()
        task = self.session.command_task
        assert task is not None
        for _ in range(1000):
            if task.done() and self.session.transport is None:
                break
            await asyncio.sleep(0)
        assert task.done(), "the command loop outlived the connection"
        return parse_replies(self.transport.take())


class ErrorLog(logging.Handler):
    """Collects log records that carry an exception: in these tests every one is a bug."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)
