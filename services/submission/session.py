"""One SMTP session: aiosmtpd's protocol with our verbs, limits and replies.

aiosmtpd parses commands and runs MAIL/RCPT/RSET/NOOP/QUIT/STARTTLS; what it decides itself gets an
enhanced status code added in `push`. We replace the verbs where we need different behaviour:

- EHLO/HELO: our extension list (PIPELINING, SIZE, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES, STARTTLS,
  AUTH only where and when it is allowed).
- AUTH: PLAIN and LOGIN checked by the auth service without blocking the loop.
- DATA: the strict reader (`message_data`), then the handler stores the message (`handler`).
- MAIL/RCPT: the whole argument goes to the handler, which parses it by RFC 5321 (`paths`) and asks
  the policy; aiosmtpd's own parser is lenient (comments, missing brackets).
- VRFY/EXPN: never tell whether a mailbox exists.

Behind a front (HAProxy) the client's address comes in a PROXY protocol v2 header, read before the
greeting from the fronts YUBIN_PROXY_PROTOCOL_FROM trusts (`shared.proxy_protocol`); from then on it is the
session's peer for everything below. Anyone else who sends such a header is closed.

Limits: sessions in all and per client address, connection rate, idle time (shorter under stress;
all in `connections`), total time, error replies per session, memory for message data, line
length, message size (and recipients per message in `handler`).
"""

import asyncio
import binascii
import logging
from base64 import b64decode, b64encode
from typing import Any

from aiosmtpd.smtp import Envelope, syntax

from services.submission import metrics, replies
from services.submission.aiosmtpd_adapter import AiosmtpdSession
from services.submission.client_address import canonical_ip
from services.submission.connections import Refusal, SessionRegistry
from services.submission.data_budget import Reservation, declared_size
from services.submission.fault_hook import FaultHook
from services.submission.headers import ClientInfo
from services.submission.message_data import ConnectionClosedInData, read_message_data
from services.submission.policy import RolePolicy
from shared.auth_client import AuthUnavailable
from shared.auth_protocols import LoginVerifier
from shared.config.submission import SubmissionSettings
from shared.faults import FaultStage
from shared.line_reader import ConnectionClosed, LineTooLong, read_line
from shared.proxy_protocol import FirstOctets, ProxyHeaderError, read_header

log = logging.getLogger(__name__)

_SENT_AT_ONCE = ("220", "221", "334", "354", "421")
"""Replies never held back for the next pipelined command: the client waits for them (greeting,
STARTTLS, AUTH challenge, DATA), or the session ends."""

AUTH_MECHANISMS = ("PLAIN", "LOGIN")  # RFC 4616, draft-murchison-sasl-login
LOGIN_USERNAME_CHALLENGE = "Username:"
LOGIN_PASSWORD_CHALLENGE = "Password:"
MAX_USERNAME = 320  # the auth API's limits (shared.models.VerifyRequest)
MAX_PASSWORD = 1024


class TransactionEnvelope(Envelope):
    """aiosmtpd's envelope plus what our policy decided for it."""

    def __init__(self) -> None:
        super().__init__()
        self.sender: str | None = None  # normalized reverse-path, "" for <>
        self.routes: dict[str, str] = {}  # accepted recipient → stream
        self.original_recipients: dict[str, str] = {}  # recipient → the RCPT address it came from (aliases)
        self.rcpt_attempts = 0


class ReceptionSMTP(AiosmtpdSession):
    def __init__(
        self,
        handler: Any,
        *,
        settings: SubmissionSettings,
        policy: RolePolicy,
        auth: LoginVerifier,
        registry: SessionRegistry,
        tls_context: Any = None,
        faults: FaultHook | None = None,
    ) -> None:
        # Set before aiosmtpd's __init__, which inspects the instance (and reads line_length_limit).
        self.settings = settings
        self.policy = policy
        self.auth = auth
        self.registry = registry
        self.faults = faults  # lab faults (MX only; fault_hook.py)
        self._refusal: Refusal | None = None
        self._greeted = False
        self._closing = False
        self._in_data = False
        self._errors = 0
        self._held_replies: list[bytes] = []  # replies to pipelined commands, sent with the last one
        self._last_activity = 0.0
        self._session_timer: asyncio.TimerHandle | None = None
        self.fronts = settings.proxy_fronts
        self._from_front = False  # the connection comes from a trusted front: its PROXY header is read first
        self._proxied_peer: tuple[str, int] | None = None  # the client's address from that header
        self._first_octets = FirstOctets()  # of a connection from anyone else: a PROXY header is refused
        # The stream limit bounds every line we buffer (commands and DATA).
        self.line_length_limit = settings.max_line_length + 1
        super().__init__(
            handler,
            data_size_limit=settings.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=settings.hostname,
            ident="ESMTP Yubin",
            tls_context=tls_context,
            timeout=settings.idle_timeout_s,
        )

    # --- connection lifecycle -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = not self.starttls_seen and self.transport is None  # not the STARTTLS re-entry
        super().connection_made(transport)
        if not first:
            if self._proxied_peer is not None:  # aiosmtpd's fresh session after STARTTLS has the front's
                assert self.session is not None
                self.session.peer = self._proxied_peer
            return
        metrics.CONNECTS.labels(self.settings.smtp_role.value).inc()
        self._last_activity = self.loop.time()
        self._from_front = self.peer_ip() in self.fronts
        if not self._from_front:  # a front's client is admitted by its own address, once the header is read
            self._refusal = self.registry.admit(self, self.peer_ip())
        self._session_timer = self.loop.call_later(
            self.settings.session_timeout_s, self.end_session, replies.SESSION_TOO_LONG
        )

    def data_received(self, data: bytes) -> None:
        if self.fronts and not self._from_front and self._first_octets.header_seen(data):
            log.warning(
                "connection refused: PROXY header from an address that is not a trusted front",
                extra={"client": self.peer_ip()},
            )
            self._close()
            return
        super().data_received(data)

    def connection_lost(self, error: Exception | None) -> None:
        if self._session_timer is not None:
            self._session_timer.cancel()
        self.registry.release(self)
        super().connection_lost(error)

    async def serve_commands(self) -> None:
        if self._from_front and not await self._read_proxy_header():
            self._close()
            return
        if self._refusal is not None:
            await self._push_raw(self._refusal.reply(self.hostname, self.peer_ip()))
            self._close()
            return
        try:
            if await self._fault(FaultStage.CONNECT):
                return
        except asyncio.CancelledError:
            # The client left (EOF) while the fault list was read: close, as aiosmtpd's loop would, or
            # the half-open connection keeps its slot until the idle timeout.
            self._close()
            raise
        await super().serve_commands()

    async def _read_proxy_header(self) -> bool:
        """Take the client's address from the front's PROXY header and admit the session by it."""
        front = self.peer_ip()
        try:
            header = await read_header(self.command_reader, self.settings.proxy_protocol_timeout_s)
        except ProxyHeaderError as exc:
            log.warning("connection refused: bad PROXY header", extra={"front": front, "error": str(exc)})
            return False
        if header.client is not None:
            assert self.session is not None
            self._proxied_peer = header.client
            self.session.peer = header.client
        log.debug(
            "PROXY header", extra={"front": front, "client": self.peer_ip(), "command": header.command.name}
        )
        self._refusal = self.registry.admit(self, self.peer_ip())
        return True

    def on_idle_timeout(self) -> None:
        # aiosmtpd restarts its idle timer per command; DATA lines only touch _last_activity (cheaper).
        idle = self.loop.time() - self._last_activity
        if idle < self.registry.idle_timeout_s and self._in_data:
            # The adapter's restart, not ours: this check is not activity, or a stalled DATA never times out.
            super().restart_idle_timer(self.registry.idle_timeout_s - idle)
            return
        self.end_session(replies.IDLE_TIMEOUT)

    def idle_timeout_changed(self) -> None:
        """The listener went into stress mode: the shorter idle limit counts from the last activity."""
        if self._closing or not self.idle_timer_armed:
            return
        idle = self.loop.time() - self._last_activity
        # The adapter's restart, not ours: re-arming is not activity.
        super().restart_idle_timer(max(self.registry.idle_timeout_s - idle, 0.001))

    def _touch(self) -> None:
        self._last_activity = self.loop.time()

    def restart_idle_timer(self, duration: float | None = None) -> None:
        self._touch()
        super().restart_idle_timer(duration or self.registry.idle_timeout_s)  # shorter under stress

    @property
    def in_transaction(self) -> bool:
        envelope = getattr(self, "envelope", None)
        return self._in_data or bool(envelope is not None and envelope.mail_from)

    def end_session(self, reply: str) -> None:
        """421 and close, from a timer or from shutdown (no await possible there)."""
        if self._closing or self.transport is None:
            return
        log.info("closing session", extra={"reply": reply.format(host=""), "client": self.peer_ip()})
        metrics.replied(self.settings.smtp_role.value, reply)
        self.transport.write(self._held_and(reply.format(host=self.hostname)))  # type: ignore[attr-defined]
        self._close()

    def _close(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.close()

    # --- lab faults (fault_hook.py) ---------------------------------------------------------------

    async def _fault(self, stage: FaultStage, data: bytes | None = None) -> bool:
        return self.faults is not None and await self.faults.intervene(self, stage, data)

    def drop(self) -> None:
        """Close without a reply; aiosmtpd cancels the command loop when the connection is lost."""
        self._close()

    def fault_context(self) -> dict[str, object]:
        envelope = self.envelope if isinstance(self.envelope, TransactionEnvelope) else None
        return {
            "client": self.peer_ip(),
            "helo": self.session.host_name if self.session is not None else None,
            "sender": envelope.sender if envelope is not None else None,
            "recipients": list(envelope.rcpt_tos) if envelope is not None and envelope.rcpt_tos else None,
        }

    # --- replies --------------------------------------------------------------------------------

    async def _push_raw(self, reply: str) -> None:
        if self._closing:
            return
        metrics.replied(self.settings.smtp_role.value, reply)
        self._held_replies.append(reply.encode("utf-8", "replace"))
        if (self.command_waiting or reply[3:4] == "-") and reply[:3] not in _SENT_AT_ONCE:
            # The rest of a multi-line reply (EHLO), or with the next command already here (RFC 2920
            # §3.1) its reply, goes out with this line: one write, one TLS record; the last line of a
            # reply that no buffered command follows flushes them all.
            return
        held, self._held_replies = self._held_replies, []
        await super().push(b"\r\n".join(held))

    def _held_and(self, reply: str) -> bytes:
        """Held replies, then `reply`, for a write outside the command loop (nothing may overtake them)."""
        held, self._held_replies = self._held_replies, []
        return b"".join(line + b"\r\n" for line in held) + reply.encode() + b"\r\n"

    async def push(self, status: str | bytes) -> None:
        text = replies.without_controls(
            status.decode("utf-8", "replace") if isinstance(status, bytes) else status
        )
        if self._greeted:  # the greeting is exempt from enhanced codes (RFC 2034 §3)
            text = replies.with_enhanced_code(text)
        self._greeted = True
        await self._push_raw(text)
        if replies.counts_as_error(text):
            self._errors += 1
            if self._errors >= self.settings.max_errors:
                log.info("too many errors", extra={"client": self.peer_ip(), "errors": self._errors})
                await self._goodbye(replies.TOO_MANY_ERRORS)
                return
        if self.registry.stopping and not self.in_transaction and not text.startswith("221"):
            await self._goodbye(replies.SHUTTING_DOWN)

    async def _goodbye(self, reply: str) -> None:
        """421 and close from inside the session; stops the command loop too."""
        await self._push_raw(reply.format(host=self.hostname))
        self._close()
        if self.command_task is not None and asyncio.current_task() is self.command_task:
            self.command_task.cancel()  # like QUIT: the loop ends at its next await

    # --- session state --------------------------------------------------------------------------

    def new_envelope(self) -> TransactionEnvelope:
        return TransactionEnvelope()

    def parse_path(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's address parser (VRFY; MAIL and RCPT use `paths`). The email package's parser raises
        IndexError on some truncated input (`x@`), which aiosmtpd would answer 451 with a traceback."""
        try:
            return super().parse_path(arg)
        except IndexError:
            return None, None  # aiosmtpd answers 553 5.1.3 malformed address

    def peer_ip(self) -> str | None:
        peer = self.session.peer if self.session is not None else None
        return canonical_ip(peer[0]) if isinstance(peer, tuple) and peer else None

    def logged_in_user(self) -> str | None:
        """The canonical address the session authenticated as. (Not `auth_*`: aiosmtpd takes those
        for SASL mechanisms.)"""
        if self.session is None or not self.session.authenticated:
            return None
        return self.session.auth_data

    def _auth_allowed_now(self) -> bool:
        return self.policy.offers_auth and (self.tls_active or self.settings.allow_plaintext_auth)

    def client_info(self) -> ClientInfo:
        assert self.session is not None
        tls_version = cipher = None
        if self.tls_active and self.transport is not None:
            ssl_object = self.transport.get_extra_info("ssl_object")
            tls_version = ssl_object.version() if ssl_object is not None else "TLS"
            cipher_info = self.transport.get_extra_info("cipher")
            cipher = cipher_info[0] if cipher_info else None
        return ClientInfo(
            helo=self.session.host_name,
            address=self.peer_ip(),
            extended=self.session.extended_smtp,
            tls_version=tls_version,
            tls_cipher=cipher,
            authenticated=bool(self.session.authenticated),
        )

    # --- verbs ----------------------------------------------------------------------------------

    @syntax("EHLO hostname")
    async def smtp_EHLO(self, hostname: str) -> None:
        """RFC 5321 §4.1.1.1; the reply lists our extensions (RFC 2920, 1870, 6152, 6531, 2034, 3207, 4954)."""
        if not hostname:
            await self.push(replies.SYNTAX_EHLO)
            return
        assert self.session is not None
        self.reset_transaction()
        self.session.extended_smtp = True
        self.session.host_name = hostname
        lines = [
            self.hostname,
            "PIPELINING",
            f"SIZE {self.settings.max_message_size}",
            "8BITMIME",
            "SMTPUTF8",
            "ENHANCEDSTATUSCODES",
        ]
        if self.tls_context is not None and not self.tls_active:
            lines.append("STARTTLS")
        if self._auth_allowed_now():
            lines.append("AUTH " + " ".join(AUTH_MECHANISMS))
        for line in lines[:-1]:
            await self._push_raw(f"250-{line}")
        await self._push_raw(f"250 {lines[-1]}")

    @syntax("HELO hostname")
    async def smtp_HELO(self, hostname: str) -> None:
        """RFC 5321 §4.1.1.1: plain SMTP, no extensions."""
        if not hostname:
            await self.push(replies.SYNTAX_HELO)
            return
        assert self.session is not None
        self.reset_transaction()
        self.session.extended_smtp = False
        self.session.host_name = hostname
        await self._push_raw(f"250 {self.hostname}")

    @syntax("STARTTLS", when="tls_context")
    async def smtp_STARTTLS(self, arg: str) -> None:
        """RFC 3207; aiosmtpd does the handshake and forgets the session state (§4.2)."""
        if self.tls_active:
            await self.push("503 5.5.1 Error: TLS already active")
            return
        if self.tls_context is None:
            await self.push("454 4.7.0 Error: TLS not available")
            return
        await super().smtp_STARTTLS(arg)

    @syntax("AUTH <mechanism>")
    async def smtp_AUTH(self, arg: str | None) -> None:
        """RFC 4954 §4 with PLAIN (RFC 4616) and LOGIN; the password is checked by the auth service."""
        assert self.session is not None and self.envelope is not None
        if not self.policy.offers_auth:
            await self.push(replies.AUTH_NOT_OFFERED)
            return
        if not self.session.host_name or not self.session.extended_smtp:
            await self.push(replies.SEND_EHLO_FIRST)
            return
        if not self._auth_allowed_now():
            await self.push(replies.AUTH_NEEDS_TLS)
            return
        if self.session.authenticated:
            await self.push(replies.AUTH_ALREADY)
            return
        if self.envelope.mail_from:
            await self.push(replies.AUTH_IN_TRANSACTION)
            return
        parts = (arg or "").split()
        if not 1 <= len(parts) <= 2:
            await self.push(replies.AUTH_SYNTAX)
            return
        mechanism, initial = parts[0].upper(), (parts[1] if len(parts) == 2 else None)
        if mechanism not in AUTH_MECHANISMS:
            await self.push(replies.AUTH_MECHANISM)
            return
        credentials = await (self._plain(initial) if mechanism == "PLAIN" else self._login(initial))
        if credentials is None:
            return  # the reply was sent where the exchange failed
        username, password = credentials
        await self.push(await self._verify(username, password))

    async def _verify(self, username: str, password: str) -> str:
        assert self.session is not None
        if not username or len(username) > MAX_USERNAME or len(password) > MAX_PASSWORD:
            return replies.AUTH_FAILED
        try:
            result = await self.auth.verify(username, password, self.policy.role.value, self.peer_ip())
        except AuthUnavailable as exc:
            log.warning("auth service unavailable", extra={"error": str(exc), "client": self.peer_ip()})
            return replies.AUTH_UNAVAILABLE
        if result.throttled:
            log.info("login throttled", extra={"username": username, "client": self.peer_ip()})
            return replies.AUTH_THROTTLED
        if not result.ok or not result.address:
            log.info("login failed", extra={"username": username, "client": self.peer_ip()})
            return replies.AUTH_FAILED
        self.session.authenticated = True
        self.session.auth_data = result.address
        log.info("login", extra={"auth_user": result.address, "client": self.peer_ip()})
        return replies.AUTH_OK

    async def _plain(self, initial: str | None) -> tuple[str, str] | None:
        response = await self._sasl_response(initial, "")
        if response is None:
            return None
        try:
            authzid, authcid, password = (part.decode("utf-8") for part in response.split(b"\0"))
        except (ValueError, UnicodeDecodeError):
            await self.push(replies.AUTH_BAD_BASE64)
            return None
        if authzid and authzid != authcid:  # acting as someone else is not supported
            await self.push(replies.AUTH_FAILED)
            return None
        return authcid, password

    async def _login(self, initial: str | None) -> tuple[str, str] | None:
        username = await self._sasl_response(initial, LOGIN_USERNAME_CHALLENGE)
        if username is None:
            return None
        password = await self._sasl_response(None, LOGIN_PASSWORD_CHALLENGE)
        if password is None:
            return None
        try:
            return username.decode("utf-8"), password.decode("utf-8")
        except UnicodeDecodeError:
            await self.push(replies.AUTH_BAD_BASE64)
            return None

    async def _sasl_response(self, initial: str | None, challenge: str) -> bytes | None:
        """The client's decoded response: the initial response if given (RFC 4954 §4), else a 334 round."""
        if initial is not None:
            if initial == "=":
                return b""
            try:
                return b64decode(initial, validate=True)
            except binascii.Error:
                await self.push(replies.AUTH_BAD_BASE64)
                return None
        await self.push(f"334 {b64encode(challenge.encode()).decode()}")
        try:
            # Not aiosmtpd's challenge_auth: its readline drops only what is buffered of an overlong
            # line, and a tail arriving later was then run as a command.
            line = await read_line(self.command_reader)
        except LineTooLong:
            await self.push(replies.LINE_TOO_LONG)
            return None
        except ConnectionClosed:
            self._close()
            return None
        blob = line.strip()
        if blob == b"*":  # RFC 4954 §4: the client cancels
            await self.push(replies.AUTH_CANCELLED)
            return None
        try:
            return b64decode(blob, validate=True)
        except binascii.Error:
            await self.push(replies.AUTH_BAD_BASE64)
            return None

    @syntax("MAIL FROM:<address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg: str | None) -> None:
        """RFC 5321 §4.1.1.2: the handler parses the argument (`paths`) and decides."""
        assert self.envelope is not None
        if await self.check_helo_needed():
            return
        if self.envelope.mail_from:
            await self.push(replies.NESTED_MAIL)
            return
        if await self._fault(FaultStage.MAIL):
            return
        await self.push(await self.run_handler_hook("MAIL", arg or ""))

    @syntax("RCPT TO:<address>", extended=" [SP <mail-parameters>]")
    async def smtp_RCPT(self, arg: str | None) -> None:
        """RFC 5321 §4.1.1.3: the handler parses the argument (`paths`) and decides."""
        assert self.envelope is not None
        if await self.check_helo_needed():
            return
        if not self.envelope.mail_from:
            await self.push(replies.NEED_MAIL)
            return
        if await self._fault(FaultStage.RCPT):
            return
        await self.push(await self.run_handler_hook("RCPT", arg or ""))

    @syntax("DATA")
    async def smtp_DATA(self, arg: str | None) -> None:
        """RFC 5321 §4.1.1.4; the reply comes after the message is durably stored."""
        assert self.session is not None and isinstance(self.envelope, TransactionEnvelope)
        if not self.session.host_name:
            await self.push(replies.SEND_HELO_FIRST)
            return
        if arg:
            await self.push(replies.SYNTAX_DATA)
            return
        if not self.envelope.mail_from:
            await self.push(replies.NEED_MAIL)
            return
        if not self.envelope.rcpt_tos:
            # With PIPELINING the client sends DATA before seeing RCPT replies (RFC 2920 §3.1).
            await self.push(replies.NO_VALID_RECIPIENTS if self.envelope.rcpt_attempts else replies.NEED_RCPT)
            return
        reservation = self.registry.data_budget.reservation()
        declared = declared_size(self.envelope.mail_options)
        if declared is not None and not reservation.cover(declared):
            # Refused before any data is sent; the transaction stays, so the client may try DATA again.
            await self.push(replies.INSUFFICIENT_STORAGE)
            return
        try:
            await self._receive_message(reservation)
        finally:
            reservation.release()

    async def _receive_message(self, reservation: Reservation) -> None:
        """354, the message (held within `reservation`), then the handler stores it and we answer."""
        assert self.envelope is not None
        await self.push(replies.START_DATA)
        self._in_data = True
        try:
            data = await read_message_data(
                self.command_reader,
                max_size=self.settings.max_message_size,
                max_line_length=self.settings.max_line_length,
                on_progress=self._touch,
                reservation=reservation,
            )
        except ConnectionClosedInData:
            self._close()
            return
        finally:
            self._in_data = False
        if data.problem is not None:
            log.info(
                "message refused",
                extra={"reason": data.problem.name.lower(), "client": self.peer_ip()},
            )
            self.end_transaction()
            await self.push(data.problem.value)
            return
        if await self._fault(FaultStage.DATA, data.content):
            self.end_transaction()  # refused or dropped: the message is not stored
            return
        self.envelope.original_content = self.envelope.content = data.content
        self._in_data = True  # storing counts as part of the transaction for a graceful shutdown
        try:
            status = await self.run_handler_hook("DATA")
        finally:
            self._in_data = False
        self.end_transaction()
        await self.push(status)

    @syntax("VRFY <address>")
    async def smtp_VRFY(self, arg: str | None) -> None:
        """RFC 5321 §3.5.3: 252 for every address, so VRFY tells nobody which mailboxes exist."""
        await self.push(replies.VRFY_CANNOT if arg else replies.VRFY_SYNTAX)

    @syntax("EXPN <list>")
    async def smtp_EXPN(self, arg: str | None) -> None:
        """RFC 5321 §3.5.2, §7.3: not offered (it would list mailboxes)."""
        await self.push(replies.EXPN_DISABLED)

    @syntax("HELP [command]")
    async def smtp_HELP(self, arg: str | None) -> None:
        """RFC 5321 §4.1.1.8."""
        await self.push("214 2.0.0 See https://www.rfc-editor.org/rfc/rfc5321")
