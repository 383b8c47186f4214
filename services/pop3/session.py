"""One POP3 connection: the RFC 1939 state machine, one method per command.

    AUTHORIZATION --(USER+PASS or AUTH PLAIN ok, maildrop locked)--> TRANSACTION --(QUIT)--> UPDATE
          |                                                              |
        QUIT / drop / timeout: nothing changes               drop / timeout: nothing is deleted

- AUTHORIZATION: CAPA, STLS, USER, PASS, AUTH, QUIT. Logins go to the auth service; the maildrop is
  locked in Redis (one session per mailbox across replicas) and snapshot.
- TRANSACTION: STAT, LIST, UIDL, RETR, TOP, DELE, RSET, NOOP, CAPA, QUIT. DELE only marks; RETR marks the
  message as retrieved. Answers come from the snapshot; only RETR and TOP open a file.
- UPDATE (entered only by QUIT from TRANSACTION): the marked messages are removed, the retrieved ones that
  stay move to cur/, the lock is released.

Commands are read one line at a time and answered in order, so pipelined commands (RFC 2449 §6.6) work
without extra effort. Bad input gets -ERR; too much of it, or too many commands without logging in,
closes the connection. Every other connection keeps being served.
"""

import asyncio
import contextlib
import enum
import logging
import os
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from redis.exceptions import RedisError

from services.pop3 import metrics
from services.pop3 import responses as R
from services.pop3.maildrop import Maildrop, MaildropMessage, MessageDeleted, NoSuchMessage
from services.pop3.sasl import InvalidBase64, InvalidPlain, decode_response, parse_plain
from services.pop3.trace import LISTED_MAX, MessageIds, TraceWriter, ids_from_head, read_ids
from services.pop3.trace import event as trace_event
from services.pop3.wire import drain, encode_message, multiline, response, send_message
from shared.auth_client import AuthUnavailable
from shared.auth_protocols import LoginVerifier
from shared.config.pop3 import Pop3Settings
from shared.line_reader import ConnectionClosed, LineTooLong, read_line
from shared.maildir import UnsafeAddress

log = logging.getLogger(__name__)


class State(enum.Enum):
    AUTHORIZATION = "AUTHORIZATION"
    TRANSACTION = "TRANSACTION"
    UPDATE = "UPDATE"


class Lock(Protocol):
    """The lock of one maildrop (`MaildropLock`); acquire and renew raise RedisError when Redis fails."""

    held: bool

    async def acquire(self) -> bool: ...

    async def renew(self) -> bool: ...

    async def release(self) -> None: ...

    async def keep_alive(self, lost: asyncio.Event) -> None: ...


class Locks(Protocol):
    def for_address(self, address: str) -> Lock: ...


class Maildrops(Protocol):
    async def open(self, address: str) -> Maildrop:
        """Raises UnsafeAddress or OSError."""
        ...

    async def release_quota(self, address: str, octets: int) -> None:
        """UPDATE removed `octets` from the mailbox: the usage delivery checks the quota against goes down.
        Best effort (never raises): a miss leaves usage too high until delivery counts afresh."""
        ...


@dataclass
class SessionEnv:
    """What every session shares: settings and the rest of the site (Redis locks and Maildirs in the
    service; in-memory ones in the fuzz tests)."""

    settings: Pop3Settings
    auth: LoginVerifier
    locks: Locks
    maildrops: Maildrops
    tls: ssl.SSLContext | None
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    trace: TraceWriter | None = None
    """Where listed/retrieved/deleted events go (`services.pop3.trace`); None: nowhere."""


class _Close(Exception):
    """End the session now (after the reply that was already sent)."""


Handler = Callable[["Pop3Session", str], Awaitable[None]]


class Pop3Session:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, env: SessionEnv, client_ip: str
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.env = env
        self.settings = env.settings
        self.client_ip = client_ip
        self.state = State.AUTHORIZATION
        self.tls_active = False
        self.username: str | None = None  # from USER, waiting for PASS
        self.address: str | None = None  # logged in as
        self.maildrop: Maildrop | None = None
        self.lock: Lock | None = None
        self._lock_lost = asyncio.Event()
        self._keep_alive: asyncio.Task[None] | None = None
        self._interrupts: tuple[asyncio.Future[bool], asyncio.Future[bool]] | None = None  # (stop, lock lost)
        self._task: asyncio.Task[Any] | None = None
        self._waiting = False  # for the next command: what `_interrupt` may cut short
        self._interrupted = False  # `_interrupt` cancelled the task
        self.commands = 0
        self.bad_commands = 0
        self.auth_commands = 0
        self.auth_failures = 0
        self.retrieved = 0  # RETRs answered, and their octets: summed up in the log when the session ends
        self.retrieved_octets = 0
        self._trace_ids: dict[int, MessageIds] = {}  # message number → what its header says, read once
        self._listed = False

    # ----------------------------------------------------------------------------------------- the loop

    async def run(self) -> None:
        try:
            await self.reply(R.GREETING)
            while True:
                line = await self._next_line()
                if line is None:
                    return
                await self._dispatch(line)
        except (_Close, ConnectionClosed, ConnectionError, ssl.SSLError):
            pass
        except TimeoutError:
            log.info("session ends: client stopped reading")
        except Exception:
            log.exception("session failed")
        finally:
            await self._end()

    async def _next_line(self) -> bytes | None:
        """The next command line; None when the session must end (idle, shutdown, lock lost), after
        saying why. Shutdown only interrupts a session waiting for a command, never one mid-command.

        The line is awaited directly, not raced against the reasons to stop in `asyncio.wait`: every RETR
        and DELE passes here, and a task plus a wait per command cost more than the rest of a DELE. A
        reason to stop cancels the session's task instead, but only while it waits here (`_interrupt`)."""
        if self._interrupts is None:
            self._task = asyncio.current_task()
            # Made once per session, not per command.
            self._interrupts = (
                asyncio.ensure_future(self.env.stopping.wait()),
                asyncio.ensure_future(self._lock_lost.wait()),
            )
            for waiter in self._interrupts:
                waiter.add_done_callback(self._interrupt)
        if self.env.stopping.is_set():  # a client pipelining commands must not keep a stopping server up
            await self.reply(R.ERR_SHUTDOWN)
            return None
        if not self._lock_lost.is_set():
            self._waiting = True
            try:
                async with asyncio.timeout(self.settings.pop3_idle_timeout_s):
                    return await read_line(self.reader)
            except LineTooLong:
                return b""  # an over-long line is answered like any other bad line
            except TimeoutError:
                if not self._interrupted:
                    log.info("session ends: idle timeout")
                    await self.reply(R.ERR_IDLE)
                    return None
            except asyncio.CancelledError:
                if not self._interrupted:
                    raise  # the server cancels what is left after the grace period
            finally:
                self._waiting = False
            if self._interrupted and self._task is not None:
                self._interrupted = False
                self._task.uncancel()
        if self._lock_lost.is_set():
            log.error("session ends: maildrop lock lost")
            await self.reply(R.ERR_LOCK_LOST)
        else:
            await self.reply(R.ERR_SHUTDOWN)
        return None

    def _interrupt(self, _: object) -> None:
        """Shutdown or a lost lock: end the wait for the next command (not a command in progress)."""
        if self._waiting and not self._interrupted and self._task is not None:
            self._interrupted = True
            self._task.cancel()

    async def _dispatch(self, raw: bytes) -> None:
        self.commands += 1
        is_auth = raw[:5].upper() == b"AUTH "  # tolerated up to pop3_max_auth_line (see the setting)
        if not raw or (len(raw) > self.settings.pop3_max_line and not is_auth):
            await self._bad(R.ERR_LINE_TOO_LONG)
            return
        try:
            line = raw.rstrip(b"\r\n").decode("utf-8")
        except UnicodeDecodeError:
            await self._bad(R.ERR_UNKNOWN_COMMAND)
            return
        verb, _, argument = line.partition(" ")
        verb = verb.upper()
        if self.state is State.AUTHORIZATION:
            self.auth_commands += 1
            if self.auth_commands > self.settings.pop3_max_auth_commands:
                await self.reply(R.ERR_TOO_MANY_AUTH_COMMANDS)
                raise _Close
        command = COMMANDS.get(verb)
        if command is None:
            await self._bad(R.ERR_UNKNOWN_COMMAND)
            return
        states, handler = command
        if self.state not in states:
            await self._bad(R.ERR_WRONG_STATE)
            return
        log.debug("command", extra={"command": verb, "state": self.state.value})
        await handler(self, argument)

    async def _bad(self, answer: str) -> None:
        self.bad_commands += 1
        if self.bad_commands >= self.settings.pop3_max_bad_commands:
            log.warning("closing: too many bad commands", extra={"client_ip": self.client_ip})
            await self.reply(R.ERR_TOO_MANY_BAD)
            raise _Close
        await self.reply(answer)

    async def reply(self, line: str) -> None:
        await self.send(response(line))

    async def send(self, data: bytes) -> None:
        """One response, in one write."""
        self.writer.write(data)
        # A client that does not read its answers is as idle as one that sends nothing.
        await drain(self.writer, self.settings.pop3_idle_timeout_s)

    async def _end(self) -> None:
        """Leave without UPDATE unless QUIT already did it: nothing marked is deleted."""
        if self._keep_alive is not None:
            self._keep_alive.cancel()
        for waiter in self._interrupts or ():
            waiter.cancel()
        if self.lock is not None:
            await self.lock.release()
        if self.state is State.TRANSACTION:
            log.info("session ended without QUIT: no messages deleted", extra={"retrieved": self.retrieved})
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 5)

    # ------------------------------------------------------------------------- AUTHORIZATION commands

    @property
    def plaintext_allowed(self) -> bool:
        return self.tls_active or self.settings.pop3_allow_plaintext_auth

    @property
    def stls_offered(self) -> bool:
        return self.env.tls is not None and not self.tls_active and self.state is State.AUTHORIZATION

    async def cmd_capa(self, argument: str) -> None:
        """RFC 2449 §5. Login mechanisms are listed only while they can be used (RFC 2595 §2)."""
        caps = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
        if self.state is State.AUTHORIZATION:
            if self.plaintext_allowed:
                caps += ["USER", "SASL PLAIN"]
            if self.stls_offered:
                caps.append("STLS")
        caps.append(f"IMPLEMENTATION {R.IMPLEMENTATION}")
        await self.send(multiline("+OK Capability list follows", caps))

    async def cmd_stls(self, argument: str) -> None:
        """RFC 2595 §4. Anything the client sent after STLS before the handshake is thrown away: it was
        sent in the clear and must not be taken as coming from inside TLS (the STARTTLS injection bug)."""
        if self.tls_active:
            await self.reply(R.ERR_STLS_ACTIVE)
            return
        if self.env.tls is None or argument:
            await self.reply(R.ERR_STLS_UNAVAILABLE)
            return
        # Stop reading plaintext, and drop what was read after the STLS line: from here on every byte from
        # the client goes to the TLS handshake (start_tls resumes reading). StreamReader has no public
        # way to drop buffered bytes.
        self.writer.transport.pause_reading()
        self.reader._buffer.clear()  # type: ignore[attr-defined]
        await self.reply(R.OK_STLS)
        try:
            await self.writer.start_tls(
                self.env.tls, ssl_handshake_timeout=self.settings.pop3_tls_handshake_timeout_s
            )
        except (ssl.SSLError, OSError, TimeoutError) as exc:
            log.info("TLS handshake failed", extra={"error": str(exc)})
            raise _Close from exc
        self.tls_active = True
        self.username = None
        log.info("TLS started")

    async def cmd_user(self, argument: str) -> None:
        """RFC 1939 §7. Always +OK: whether the user exists is only ever revealed by a good password."""
        if not self.plaintext_allowed:
            await self.reply(R.ERR_PLAINTEXT_DISALLOWED)
            return
        if not argument.strip():
            await self._bad(R.ERR_SYNTAX)
            return
        self.username = argument.strip()
        await self.reply(R.OK_USER)

    async def cmd_pass(self, argument: str) -> None:
        """RFC 1939 §7. The whole rest of the line is the password: passwords may contain spaces."""
        if not self.plaintext_allowed:
            await self.reply(R.ERR_PLAINTEXT_DISALLOWED)
            return
        if self.username is None:
            await self.reply(R.ERR_USER_FIRST)
            return
        username, self.username = self.username, None
        await self._login(username, argument)

    async def cmd_auth(self, argument: str) -> None:
        """RFC 5034. Bare AUTH lists the mechanisms (RFC 1734 style, which clients such as Outlook use)."""
        mechanism, _, initial = argument.strip().partition(" ")
        if not mechanism:
            await self.send(multiline("+OK", ["PLAIN"] if self.plaintext_allowed else []))
            return
        if mechanism.upper() != "PLAIN":
            await self.reply(R.ERR_AUTH_MECHANISM)
            return
        if not self.plaintext_allowed:
            await self.reply(R.ERR_PLAINTEXT_DISALLOWED)
            return
        if not initial:
            await self.reply(R.AUTH_CONTINUE)
            raw = await self._next_line()
            if raw is None:
                raise _Close
            if not raw:
                await self._bad(R.ERR_LINE_TOO_LONG)
                return
            initial = raw.rstrip(b"\r\n").decode("utf-8", "replace")
            if initial == "*":
                await self.reply(R.ERR_AUTH_CANCELLED)
                return
        try:
            username, password = parse_plain(decode_response(initial.strip()))
        except InvalidBase64:
            await self._bad(R.ERR_AUTH_BASE64)
            return
        except InvalidPlain:
            await self._failed_login()
            return
        await self._login(username, password)

    async def cmd_quit(self, argument: str) -> None:
        """RFC 1939 §5 (AUTHORIZATION: just leave) and §6 (TRANSACTION: the UPDATE state)."""
        if self.state is State.TRANSACTION:
            await self._update()
        else:
            await self.reply(R.BYE)
        raise _Close

    async def _login(self, username: str, password: str) -> None:
        try:
            result = await self.env.auth.verify(username, password, service="pop3", client_ip=self.client_ip)
        except AuthUnavailable as exc:
            log.error("auth service unavailable", extra={"error": str(exc)})
            metrics.LOGINS.labels("unavailable").inc()
            await self.reply(R.ERR_AUTH_UNAVAILABLE)
            return
        except ValueError:  # longer than the auth API accepts: cannot be a valid login
            await self._failed_login()
            return
        if result.throttled:
            log.warning("login throttled", extra={"client_ip": self.client_ip})
            metrics.LOGINS.labels("throttled").inc()
            await self.reply(R.ERR_THROTTLED)
            return
        if not result.ok or result.address is None:
            await self._failed_login()
            return
        await self._open_maildrop(result.address)

    async def _failed_login(self) -> None:
        self.auth_failures += 1
        metrics.LOGINS.labels("failed").inc()
        log.info("login failed", extra={"client_ip": self.client_ip, "failures": self.auth_failures})
        await asyncio.sleep(self.settings.pop3_auth_failure_delay_s)
        if self.auth_failures >= self.settings.pop3_max_auth_failures:
            await self.reply(R.ERR_TOO_MANY_AUTH_FAILURES)
            raise _Close
        await self.reply(R.ERR_AUTH_FAILED)

    async def _open_maildrop(self, address: str) -> None:
        """Lock, then snapshot (RFC 1939 §8: the lock is taken when the session enters TRANSACTION)."""
        lock = self.env.locks.for_address(address)
        try:
            if not await lock.acquire():
                log.info("maildrop in use", extra={"user": address})
                await self.reply(R.ERR_IN_USE)
                return
        except RedisError as exc:
            log.error("could not lock maildrop", extra={"user": address, "error": str(exc)})
            await self.reply(R.ERR_MAILDROP_UNAVAILABLE)
            return
        self.lock = lock  # from here on `_end` releases it, whatever happens
        try:
            maildrop = await self.env.maildrops.open(address)
        except (UnsafeAddress, OSError) as exc:
            log.error("could not read maildrop", extra={"user": address, "error": repr(exc)})
            await lock.release()
            self.lock = None
            await self.reply(R.ERR_MAILDROP_UNAVAILABLE)
            return
        self.maildrop, self.address = maildrop, address
        self._keep_alive = asyncio.create_task(lock.keep_alive(self._lock_lost))
        self.state = State.TRANSACTION
        count, size = maildrop.stat()
        log.info("logged in", extra={"user": address, "messages": count, "octets": size})
        metrics.LOGINS.labels("ok").inc()
        await self.reply(f"+OK Logged in, {count} messages ({size} octets)")

    # --------------------------------------------------------------------------- TRANSACTION commands

    def _message_number(self, argument: str) -> int | None:
        """A message number argument: decimal digits only (no sign, no spaces), as RFC 1939 §3 defines."""
        if not argument.isascii() or not argument.isdigit():
            return None  # the line length bounds the digits, so int() stays cheap
        return int(argument)

    async def _lookup(self, argument: str) -> MaildropMessage | None:
        """The message a number argument names, or None after answering -ERR."""
        assert self.maildrop is not None
        number = self._message_number(argument)
        if number is None:
            await self._bad(R.ERR_SYNTAX)
            return None
        try:
            return self.maildrop.get(number)
        except NoSuchMessage:
            await self.reply(R.ERR_NO_SUCH_MESSAGE)
        except MessageDeleted:
            await self.reply(R.ERR_MESSAGE_DELETED)
        return None

    async def cmd_stat(self, argument: str) -> None:
        assert self.maildrop is not None
        count, size = self.maildrop.stat()
        await self.reply(f"+OK {count} {size}")

    async def cmd_list(self, argument: str) -> None:
        await self._listing(argument, lambda m: str(m.size))

    async def cmd_uidl(self, argument: str) -> None:
        await self._listing(argument, lambda m: m.uid)

    async def _listing(self, argument: str, value: Callable[[MaildropMessage], str]) -> None:
        """LIST and UIDL (RFC 1939 §5, §7): one message, or all not marked deleted."""
        assert self.maildrop is not None
        if argument:
            message = await self._lookup(argument)
            if message is not None:
                await self.reply(f"+OK {message.number} {value(message)}")
            return
        count, size = self.maildrop.stat()
        visible = self.maildrop.visible()
        lines = [f"{m.number} {value(m)}" for m in visible]
        await self.send(multiline(f"+OK {count} messages ({size} octets)", lines))
        if not self._listed:
            self._listed = True
            await self._trace("listed", [m for m in visible if m.is_new][:LISTED_MAX])

    async def cmd_retr(self, argument: str) -> None:
        """RFC 1939 §5. A retrieved message moves from new/ to cur/ in the UPDATE state, as Dovecot sets
        \\Seen at QUIT; the UIDL stays the same."""
        message = await self._lookup(argument)
        if message is None:
            return
        if await self._send_message(message, f"+OK {message.size} octets", None):
            message.retrieved = True
            self.retrieved += 1
            metrics.RETRIEVALS.labels("RETR").inc()
            metrics.RETRIEVED_BYTES.inc(message.size)
            self.retrieved_octets += message.size
            log.debug("retrieved", extra={"user": self.address, "uid": message.uid, "octets": message.size})
            await self._trace("retrieved", [message], command="RETR")

    async def cmd_top(self, argument: str) -> None:
        """RFC 1939 §7: the header, the blank line, and the first n lines of the body."""
        number, _, lines = argument.partition(" ")
        if not lines.isascii() or not lines.isdigit():
            await self._bad(R.ERR_SYNTAX)
            return
        message = await self._lookup(number)
        if message is not None and await self._send_message(
            message, "+OK Top of message follows", int(lines)
        ):
            metrics.RETRIEVALS.labels("TOP").inc()
            await self._trace("retrieved", [message], command="TOP", lines=int(lines))

    async def _send_message(self, message: MaildropMessage, first: str, body_lines: int | None) -> bool:
        """Send a message: read whole on the event loop if small (a page-cache read costs less than the
        hop to a worker thread), streamed from a worker thread if large."""
        try:
            # Opening is a quick metadata lookup; only reading a large file is worth a thread.
            assert self.maildrop is not None
            file = self.maildrop.open_message(message)
        except OSError as exc:
            log.error("cannot open message", extra={"uid": message.uid, "error": str(exc)})
            await self.reply(R.ERR_MESSAGE_GONE)
            return False
        with file:
            size = file.seek(0, os.SEEK_END)  # one lseek, like the fstat it replaces; works in memory too
            file.seek(0)
            if size <= self.settings.pop3_inline_read_max_bytes:
                stored = file.read()
                self._remember_ids(message, stored)
                await self.send(response(first) + encode_message(stored, body_lines))
            else:
                await send_message(
                    self.writer, file, first, body_lines, drain_timeout=self.settings.pop3_idle_timeout_s
                )
        return True

    async def cmd_dele(self, argument: str) -> None:
        """RFC 1939 §5: only marks; the message is removed in the UPDATE state."""
        message = await self._lookup(argument)
        if message is not None:
            assert self.maildrop is not None
            self.maildrop.delete(message.number)
            await self.reply(f"+OK Message {message.number} deleted")

    async def cmd_rset(self, argument: str) -> None:
        assert self.maildrop is not None
        self.maildrop.reset()
        count, size = self.maildrop.stat()
        await self.reply(f"+OK Maildrop has {count} messages ({size} octets)")

    async def cmd_noop(self, argument: str) -> None:
        await self.reply("+OK")

    async def _update(self) -> None:
        """RFC 1939 §6. Deletes only while the lock is still ours: if it expired, another session may be
        working on the maildrop and its view must not change under it."""
        assert self.maildrop is not None and self.lock is not None
        self.state = State.UPDATE
        if self._keep_alive is not None:
            self._keep_alive.cancel()
        try:
            still_ours = await self.lock.renew()
        except RedisError as exc:
            log.error("could not confirm maildrop lock", extra={"error": str(exc)})
            still_ours = False
        if not still_ours:
            await self.reply(R.ERR_LOCK_LOST)
            return
        marked = [m for m in self.maildrop.messages if m.deleted]
        await self._trace_ids_of(marked)  # before the files go
        removed, failed = await self.maildrop.commit()
        await self._release_quota(self.maildrop.removed_octets)
        # Released before the answer: a client that reconnects right after +OK must not find it in use.
        await self.lock.release()
        log.info(
            "update",
            extra={
                "user": self.address,
                "retrieved": self.retrieved,
                "retrieved_octets": self.retrieved_octets,
                "deleted": removed,
                "failed": failed,
            },
        )
        if failed:
            marked = [m for m in marked if not await asyncio.to_thread(os.path.lexists, m.path)]
        await self._trace("deleted", marked)
        if self.env.trace is not None:  # before the answer: who saw it finds the deletions traced
            await self.env.trace.flush()
        if failed:
            await self.reply(R.ERR_UPDATE_FAILED)
        else:
            await self.reply(f"{R.BYE} ({removed} messages deleted)")

    async def _release_quota(self, octets: int) -> None:
        if octets and self.address is not None:
            await self.env.maildrops.release_quota(self.address, octets)

    # ------------------------------------------------------------------------------------ trace events

    def _remember_ids(self, message: MaildropMessage, stored: bytes) -> None:
        """The ids of a message RETR or TOP has read anyway: no second read for its trace events."""
        if self.env.trace is not None and self.address is not None and message.number not in self._trace_ids:
            self._trace_ids[message.number] = ids_from_head(stored, message.path.name, self.address)

    async def _trace_ids_of(self, messages: list[MaildropMessage]) -> list[MessageIds]:
        if self.env.trace is None or self.address is None:
            return []
        address = self.address
        missing = [m for m in messages if m.number not in self._trace_ids]
        if missing:  # one worker thread for the lot: a few small header reads
            found = await asyncio.to_thread(lambda: [read_ids(m.path, address) for m in missing])
            self._trace_ids.update({m.number: ids for m, ids in zip(missing, found, strict=True)})
        return [self._trace_ids[m.number] for m in messages]

    async def _trace(self, name: str, messages: list[MaildropMessage], **detail: Any) -> None:
        """Queue trace events for `messages` (see `services.pop3.trace`); best effort, never raises."""
        if self.env.trace is None or not messages:
            return
        try:
            ids = await self._trace_ids_of(messages)
            about = {"user": self.address, "client": self.client_ip}
            events = [
                trace_event(i, name, {**about, "uid": m.uid, "octets": m.size, **detail})
                for m, i in zip(messages, ids, strict=True)
            ]
        except Exception:  # a file we cannot make sense of must not end the user's session
            log.exception("could not build trace events", extra={"event": name})
            return
        self.env.trace.add(events)


_AUTH = frozenset({State.AUTHORIZATION})
_TRANSACTION = frozenset({State.TRANSACTION})
_BOTH = _AUTH | _TRANSACTION

COMMANDS: dict[str, tuple[frozenset[State], Handler]] = {
    "CAPA": (_BOTH, Pop3Session.cmd_capa),
    "QUIT": (_BOTH, Pop3Session.cmd_quit),
    "STLS": (_AUTH, Pop3Session.cmd_stls),
    "USER": (_AUTH, Pop3Session.cmd_user),
    "PASS": (_AUTH, Pop3Session.cmd_pass),
    "AUTH": (_AUTH, Pop3Session.cmd_auth),
    "STAT": (_TRANSACTION, Pop3Session.cmd_stat),
    "LIST": (_TRANSACTION, Pop3Session.cmd_list),
    "UIDL": (_TRANSACTION, Pop3Session.cmd_uidl),
    "RETR": (_TRANSACTION, Pop3Session.cmd_retr),
    "TOP": (_TRANSACTION, Pop3Session.cmd_top),
    "DELE": (_TRANSACTION, Pop3Session.cmd_dele),
    "RSET": (_TRANSACTION, Pop3Session.cmd_rset),
    "NOOP": (_TRANSACTION, Pop3Session.cmd_noop),
}
"""Every command, the states it is valid in (RFC 1939 §§4-7, RFC 2449 §5, RFC 2595 §4, RFC 5034 §4)."""
