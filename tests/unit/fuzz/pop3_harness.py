"""The POP3 session on an in-memory connection, with in-memory logins, maildrops and locks.

`Pop3Session` and the snapshot logic of `Maildrop` are the real ones; `MemoryMaildrop` only replaces the
file I/O (reading a message, the UPDATE state's removals) with a dict, `MemoryLocks` stands in for the
Redis locks (and can fail or be lost), and the logins come from the SMTP harness's `MemoryDirectory`.
"""

import asyncio
import functools
import io
from pathlib import Path
from typing import BinaryIO

from redis.exceptions import ConnectionError as RedisConnectionError

from services.pop3.maildrop import Maildrop, MaildropMessage
from services.pop3.session import Pop3Session, SessionEnv
from shared.config.pop3 import Pop3Settings
from shared.maildir import wire_size
from tests.fixtures.memory_transport import MemoryTransport, settle
from tests.unit.fuzz.smtp_harness import MemoryDirectory

Mailbox = dict[str, bytes]  # uid → the stored message (LF line ends, as in a Maildir file)


def size_on_the_wire(stored: bytes) -> int:
    """As `wire_size_of_file`: a last line without a line break gets a CRLF on the wire."""
    return wire_size(stored) + (2 if stored and not stored.endswith(b"\n") else 0)


class MemoryMaildrop(Maildrop):
    def __init__(self, mailbox: Mailbox) -> None:
        messages = [
            MaildropMessage(number=i, path=Path("/memory/new") / uid, uid=uid, size=size_on_the_wire(content))
            for i, (uid, content) in enumerate(mailbox.items(), start=1)
        ]
        super().__init__(Path("/memory"), messages)
        self.mailbox = mailbox

    def open_message(self, message: MaildropMessage) -> BinaryIO:
        if message.uid not in self.mailbox:
            raise FileNotFoundError(message.uid)
        return io.BytesIO(self.mailbox[message.uid])

    async def commit(self) -> tuple[int, int]:
        await asyncio.sleep(0)
        removed = 0
        for message in self.messages:
            if message.deleted:
                self.mailbox.pop(message.uid, None)
                removed += 1
        return removed, 0


class MemoryMaildrops:
    def __init__(self, mailboxes: dict[str, Mailbox], failing: bool = False) -> None:
        self.mailboxes = mailboxes
        self.failing = failing

    async def open(self, address: str) -> Maildrop:
        await asyncio.sleep(0)
        if self.failing:
            raise OSError("fuzz: disk gone")
        return MemoryMaildrop(self.mailboxes.setdefault(address, {}))

    async def release_quota(self, address: str, octets: int) -> None:
        await asyncio.sleep(0)


class MemoryLocks:
    """Locks by address; `redis_down` makes acquiring fail, `lose()` takes every lock away."""

    def __init__(self, held_elsewhere: frozenset[str] = frozenset(), redis_down: bool = False) -> None:
        self.holders: set[str] = set(held_elsewhere)
        self.redis_down = redis_down
        self.lost = asyncio.Event()

    def for_address(self, address: str) -> "MemoryLock":
        return MemoryLock(self, address)

    def lose(self) -> None:
        self.lost.set()


class MemoryLock:
    def __init__(self, locks: MemoryLocks, address: str) -> None:
        self.locks = locks
        self.address = address
        self.held = False

    async def acquire(self) -> bool:
        await asyncio.sleep(0)
        if self.locks.redis_down:
            raise RedisConnectionError("fuzz: Redis down")
        if self.address in self.locks.holders:
            return False
        self.locks.holders.add(self.address)
        self.held = True
        return True

    async def renew(self) -> bool:
        await asyncio.sleep(0)
        self.held = self.held and not self.locks.lost.is_set()
        return self.held

    async def release(self) -> None:
        if self.held:
            self.held = False
            self.locks.holders.discard(self.address)

    async def keep_alive(self, lost: asyncio.Event) -> None:
        await self.locks.lost.wait()
        self.held = False
        lost.set()


@functools.cache
def pop3_settings(*, allow_plaintext_auth: bool, inline_read_max_bytes: int) -> Pop3Settings:
    return Pop3Settings(
        service_token="fuzz",  # type: ignore[arg-type]
        mail_root=Path("/nonexistent"),
        pop3_allow_plaintext_auth=allow_plaintext_auth,
        pop3_idle_timeout_s=3600,
        pop3_auth_failure_delay_s=0,
        pop3_max_line=255,
        pop3_max_auth_line=512,
        pop3_max_bad_commands=8,
        pop3_max_auth_commands=20,
        pop3_max_auth_failures=3,
        pop3_inline_read_max_bytes=inline_read_max_bytes,
    )


class Pop3Conversation:
    def __init__(
        self,
        mailboxes: dict[str, Mailbox],
        *,
        allow_plaintext_auth: bool = True,
        inline_read_max_bytes: int = 1 << 20,
        directory_failures: frozenset[int] = frozenset(),
        locks: MemoryLocks | None = None,
        maildrop_failing: bool = False,
    ) -> None:
        self.settings = pop3_settings(
            allow_plaintext_auth=allow_plaintext_auth, inline_read_max_bytes=inline_read_max_bytes
        )
        self.reader = asyncio.StreamReader(limit=self.settings.pop3_max_auth_line)
        self.protocol = asyncio.StreamReaderProtocol(self.reader)
        self.transport = MemoryTransport(self.protocol)
        self.protocol.connection_made(self.transport)
        writer = asyncio.StreamWriter(self.transport, self.protocol, self.reader, asyncio.get_running_loop())
        self.locks = locks or MemoryLocks()
        env = SessionEnv(
            settings=self.settings,
            auth=MemoryDirectory(directory_failures),
            locks=self.locks,
            maildrops=MemoryMaildrops(mailboxes, maildrop_failing),
            tls=None,
        )
        self.session = Pop3Session(self.reader, writer, env, "127.0.0.1")
        self.task = asyncio.ensure_future(self.session.run())

    @property
    def closed(self) -> bool:
        return self.transport.closed

    async def start(self) -> bytes:
        await settle(self.reader, self.task)
        return self.transport.take()

    async def send(self, data: bytes, cuts: list[int] | None = None) -> bytes:
        start = 0
        for end in [*sorted(set(cuts or [])), len(data)]:
            if start < end <= len(data) and not self.closed:
                self.protocol.data_received(data[start:end])
                await settle(self.reader, self.task)
                start = end
        return self.transport.take()

    async def end(self) -> bytes:
        if not self.closed:
            self.protocol.eof_received()
        for _ in range(10_000):
            if self.task.done():
                break
            await asyncio.sleep(0 if _ < 1000 else 0.001)
        assert self.task.done(), "the session outlived the connection"
        self.task.result()  # run() must not raise
        return self.transport.take()
