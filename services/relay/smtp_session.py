"""One SMTP conversation with one remote address (aiosmtplib): EHLO, STARTTLS, MAIL, RCPT..., DATA.

The result is one `RecipientStatus` per recipient, taken from the remote server's replies, or our own
when the server lacks what the message needs (`_plan`: 5.6.7 without SMTPUTF8, 5.6.3 without 8BITMIME; no
silent downgrade) or, with certificate verification on, cannot give us trusted TLS (4.7.5 / 4.7.4). A failure before
the mail transaction started (no connection, bad greeting, EHLO or TLS trouble) is a *host* failure: the
caller tries the next address or MX host; anything later is the final word of this host.

Connections are reused (`connection_cache`): after a clean transaction the connection waits a few seconds
for the next message to the same server, which starts with RSET. If a cached connection turns out dead
before the message went out (RSET fails, or it drops before DATA), a new connection takes over: nothing
was sent, so nothing is lost or sent twice. Once DATA has started, a drop is reported like any other.

A server that offers PIPELINING (RFC 2920) gets RSET (on a cached connection), MAIL, every RCPT and DATA
in one write, and the message in a second one: two round trips instead of four or five, and far fewer TLS
records and system calls on both sides. Every reply is still checked, in order, exactly as when the
commands go one by one (`_pipelined_transaction`).
"""

import ipaddress
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiosmtplib
from aiosmtplib import SMTP, SMTPResponse

from services.relay.aiosmtplib_adapter import command, data_payload, pipelined
from services.relay.connection_cache import Connection, ConnectionCache, Destination, quit_politely
from services.relay.message_needs import MessageNeeds, ascii_address, message_needs
from shared.models import RecipientState, RecipientStatus

# RFC 3463 enhanced status code at the start of a reply text, e.g. "5.1.1 <bob@x>: no such user".
_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?=\s|$)")


def enhanced_status(code: int, text: str) -> str:
    """The reply's enhanced status code if it has a consistent one, else the class alone: 5.0.0, 4.0.0."""
    match = _ENHANCED.match(text)
    if match and match.group(1) == str(code)[0]:
        return match.group(0)
    return "2.0.0" if 200 <= code < 300 else "5.0.0" if 500 <= code < 600 else "4.0.0"


def reply_text(code: int, message: str) -> str:
    return f"{code} {' '.join(message.split())}"


def status_from_reply(recipient: str, code: int, message: str, remote_mta: str) -> RecipientStatus:
    state = (
        RecipientState.DELIVERED
        if 200 <= code < 300
        else RecipientState.FAILED
        if 500 <= code < 600
        else RecipientState.DEFERRED  # 4xx, and anything unexpected: try again later
    )
    return RecipientStatus(
        recipient=recipient,
        state=state,
        status=enhanced_status(code, message),
        diagnostic=reply_text(code, message),
        remote_mta=remote_mta,
    )


Accepted = Callable[[list[RecipientStatus]], Awaitable[None]]
"""Told the recipients a server accepted, as soon as its 250 to DATA arrives (before QUIT)."""


class StartTlsFailed(Exception):
    """The TLS handshake after STARTTLS failed; the caller may try again without TLS (opportunistic TLS
    only: with `tls_verify` the failure is `TlsRequired` and nothing is sent in plain text)."""


class TlsRequired(Exception):
    """With certificate verification on, TLS is mandatory (Postfix's `smtp_tls_security_level = verify`):
    an untrusted certificate (4.7.5) or a server without STARTTLS (4.7.4) defers the mail for this host."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass
class SessionResult:
    statuses: list[RecipientStatus]
    host_failure: bool
    """True when the transaction never started: the next host should be tried."""
    reply: str
    """The reply (or error) that decided the outcome, for the trace."""
    tls: bool = False


@dataclass(frozen=True)
class SessionOptions:
    port: int
    helo_name: str
    connect_timeout: float
    command_timeout: float
    starttls: bool
    tls_verify: bool
    tls_context: ssl.SSLContext | None = None
    """Built once at start-up (`client_tls_context`): building one per connection costs ~tens of ms."""
    source_address: str | None = None
    """Bind outgoing connections to this local address (None: the system picks)."""

    @property
    def tls_required(self) -> bool:
        """Verification on means TLS on: a verified channel that may fall back to plain text is none."""
        return self.starttls and self.tls_verify


def client_tls_context(verify: bool) -> ssl.SSLContext:
    """The client side of STARTTLS, as aiosmtplib would build it per connection: the system's CAs and
    hostname check when `verify`, else encryption without authentication (opportunistic TLS)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.check_hostname = verify
    context.verify_mode = ssl.CERT_REQUIRED if verify else ssl.CERT_NONE
    return context


def _all(
    recipients: list[str], state: RecipientState, status: str, diagnostic: str, mta: str
) -> list[RecipientStatus]:
    return [
        RecipientStatus(recipient=r, state=state, status=status, diagnostic=diagnostic, remote_mta=mta)
        for r in recipients
    ]


def _mail_options(smtp: SMTP, body: bytes, needs: MessageNeeds, smtputf8: bool) -> list[str]:
    """MAIL FROM parameters; `_plan` has already made sure the server can take what we ask for."""
    options: list[str] = []
    if smtp.supports_extension("size"):
        options.append(f"SIZE={len(body)}")
    if needs.eight_bit and smtp.supports_extension("8bitmime"):
        options.append("BODY=8BITMIME")
    if smtputf8:
        options.append("SMTPUTF8")
    return options


@dataclass(frozen=True)
class _Plan:
    """How this server gets the message: the RCPT address per recipient, and whether SMTPUTF8 is used."""

    smtputf8: bool
    needs: MessageNeeds
    rcpt: dict[str, str]
    mail_from: str
    refused: list[RecipientStatus]


def _plan(smtp: SMTP, sender: str, recipients: list[str], body: bytes, mx_name: str) -> _Plan:
    """Match what the message needs to what the server offers (see `message_needs`): never downgrade.

    Without SMTPUTF8 a recipient whose local part is not ASCII fails alone (5.6.7) and the others go on;
    a sender or header section that needs it fails the whole message (5.6.7); an 8-bit message for a
    server without 8BITMIME fails (5.6.3; we do not convert, see docs/relay.md)."""
    needs = message_needs(body)
    offers_utf8 = smtp.supports_extension("smtputf8")

    def fail_all(status: str, reason: str) -> _Plan:
        return _Plan(
            False, needs, {}, sender, _all(recipients, RecipientState.FAILED, status, reason, mx_name)
        )

    if needs.eight_bit and not (offers_utf8 or smtp.supports_extension("8bitmime")):
        return fail_all("5.6.3", f"message has 8-bit content, but host {mx_name} does not offer 8BITMIME")
    if offers_utf8:
        utf8 = needs.utf8_headers or not all(a.isascii() for a in [sender, *recipients])
        return _Plan(utf8, needs, {r: r for r in recipients}, sender, [])
    why = f"SMTPUTF8 is required, but was not offered by host {mx_name}"
    mail_from = ascii_address(sender) if sender else sender
    if mail_from is None:
        return fail_all("5.6.7", f"{why} (non-ASCII sender address)")
    if needs.utf8_headers:
        return fail_all("5.6.7", f"{why} (non-ASCII message header)")
    rcpt: dict[str, str] = {}
    refused: list[RecipientStatus] = []
    for recipient in recipients:
        form = ascii_address(recipient)
        if form is None:
            refused += _all(
                [recipient], RecipientState.FAILED, "5.6.7", f"{why} (non-ASCII address)", mx_name
            )
        else:
            rcpt[recipient] = form
    return _Plan(False, needs, rcpt, mail_from, refused)


def _size_limit(smtp: SMTP) -> int:
    """The remote's advertised SIZE limit (RFC 1870), 0 when it has none."""
    value = smtp.esmtp_extensions.get("size", "")
    return int(value) if value.isdigit() else 0


async def _greet(smtp: SMTP, options: SessionOptions, mx_name: str, use_tls: bool) -> bool:
    """EHLO (HELO as a fallback) and STARTTLS when offered; returns whether TLS is on."""
    try:
        await smtp.ehlo()
    except aiosmtplib.SMTPHeloError:
        await smtp.helo()  # no EHLO, no extensions: no STARTTLS either
    if use_tls and options.starttls and smtp.supports_extension("starttls"):
        try:
            await smtp.starttls(
                server_hostname=mx_name, validate_certs=options.tls_verify, tls_context=options.tls_context
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            if options.tls_required:
                # Never fall back to plain text: that is exactly what an attacker who breaks the handshake
                # wants. The message waits (4.7.5, "cryptographic failure", RFC 3463) or tries another MX.
                raise TlsRequired("4.7.5", f"TLS with {mx_name} failed: {_describe(exc)}") from exc
            raise StartTlsFailed(str(exc)) from exc
        await smtp.ehlo()  # RFC 3207: forget what was learned before TLS
        return True
    if options.tls_required:
        raise TlsRequired("4.7.4", f"TLS is required, but was not offered by host {mx_name}")
    return False


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _source(options: SessionOptions, address: str) -> tuple[str, int] | None:
    """The local address to bind to, if one is set and of the destination's family (an IPv4 source
    cannot reach an IPv6 MX: then the system picks)."""
    if not options.source_address:
        return None
    if ipaddress.ip_address(options.source_address).version != ipaddress.ip_address(address).version:
        return None
    return (options.source_address, 0)


async def _open(address: str, mx_name: str, options: SessionOptions, use_tls: bool) -> Connection:
    """A new connection, greeted (and with TLS if offered). Raises on any trouble; the caller closes."""
    smtp = SMTP(
        hostname=address,
        port=options.port,
        local_hostname=options.helo_name,
        source_address=_source(options, address),
        timeout=options.command_timeout,
        start_tls=False,  # STARTTLS is decided here, after reading the EHLO reply
        validate_certs=options.tls_verify,
        tls_context=options.tls_context,
    )
    connection = Connection(smtp, tls=False)
    try:
        await smtp.connect(timeout=options.connect_timeout)
        connection.tls = await _greet(smtp, options, mx_name, use_tls)
    except (aiosmtplib.SMTPException, OSError, TlsRequired) as exc:  # timeouts are OSErrors too
        smtp.close()
        raise _OpenFailed(exc, connection.tls) from exc
    except BaseException:  # StartTlsFailed (the caller retries without TLS), cancellation
        smtp.close()
        raise
    return connection


class _OpenFailed(Exception):
    def __init__(self, cause: BaseException, tls: bool) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.tls = tls


async def _reusable(connection: Connection, options: SessionOptions) -> bool:
    """RSET on a cached connection: clears whatever the last transaction left and proves the server is
    still there (Postfix does the same before reusing a cached session)."""
    try:
        await connection.smtp.rset(timeout=options.connect_timeout)
        return True
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        connection.smtp.close()
        return False
    except BaseException:
        connection.smtp.close()  # cancelled: nobody will use or give back this connection
        raise


async def _cached(
    cache: ConnectionCache | None, destination: Destination, options: SessionOptions
) -> Connection | None:
    while cache is not None and (connection := cache.take(destination)) is not None:
        if connection.smtp.supports_extension("pipelining"):
            connection.rset_pending = True  # sent at the head of the pipelined transaction
            return connection
        if await _reusable(connection, options):
            return connection
    return None


async def send_via(
    address: str,
    mx_name: str,
    sender: str,
    recipients: list[str],
    body: bytes,
    options: SessionOptions,
    *,
    use_tls: bool = True,
    on_accepted: Accepted | None = None,
    cache: ConnectionCache | None = None,
) -> SessionResult:
    """Deliver `body` to `recipients` through the server at `address` (whose MX name is `mx_name`), on a
    cached connection if there is one; a connection still healthy afterwards goes (back) into the cache."""
    destination = (address, options.port, mx_name)
    connection = await _cached(cache, destination, options)
    if connection is not None:
        result = await _transaction(connection, address, mx_name, sender, recipients, body, on_accepted)
        if result is not _STALE:
            await _release(cache, destination, connection)
            return result
        # The cached connection died before the message went out: nothing was sent, use a new one.
    try:
        connection = await _open(address, mx_name, options, use_tls)
    except _OpenFailed as failure:
        return _failure(
            failure.cause, recipients, address, mx_name, transaction_started=False, tls=failure.tls
        )
    result = await _transaction(connection, address, mx_name, sender, recipients, body, on_accepted)
    await _release(cache, destination, connection)
    return result


_STALE = SessionResult([], True, "the cached connection was lost")
"""Only for a connection that carried mail before: a new connection's drop is reported as it is."""


async def _release(cache: ConnectionCache | None, destination: Destination, connection: Connection) -> None:
    """Keep a healthy connection for the next message, or say goodbye: in the background, so the
    outcome of the message is written without waiting for the server's answer to QUIT."""
    if not connection.smtp.is_connected:
        return
    connection.transactions += 1
    if cache is None:
        await quit_politely(connection.smtp, connection.smtp.timeout or 10.0)
    elif not cache.put(destination, connection):
        cache.close_later(connection)


async def _transaction(
    connection: Connection,
    address: str,
    mx_name: str,
    sender: str,
    recipients: list[str],
    body: bytes,
    on_accepted: Accepted | None,
) -> SessionResult:
    """MAIL, RCPT..., DATA on a greeted connection. On an error the connection is closed; `_STALE` when a
    connection that had carried mail before dropped before DATA (nothing sent: the caller opens a new one)."""
    smtp, tls = connection.smtp, connection.tls
    data_sent = False
    try:
        limit = _size_limit(smtp)
        if limit and len(body) > limit:
            reply = f"message size {len(body)} exceeds the limit {limit} of {mx_name}"
            return SessionResult(
                _all(recipients, RecipientState.FAILED, "5.3.4", reply, mx_name), False, reply, tls
            )

        plan = _plan(smtp, sender, recipients, body, mx_name)
        statuses: dict[str, RecipientStatus] = {s.recipient: s for s in plan.refused}
        if not plan.rcpt:  # nothing this server can take: no transaction was started
            return SessionResult(
                [statuses[r] for r in recipients], False, plan.refused[-1].diagnostic or "", tls
            )
        mail_options = _mail_options(smtp, body, plan.needs, plan.smtputf8)
        encoding = "utf-8" if plan.smtputf8 else "ascii"
        if smtp.supports_extension("pipelining"):
            rset, connection.rset_pending = connection.rset_pending, False
            lines = [command(b"RSET")] if rset else []
            lines.append(
                command(
                    b"MAIL",
                    b"FROM:<" + plan.mail_from.encode(encoding) + b">",
                    *(option.encode("ascii") for option in mail_options),
                )
            )
            lines += [command(b"RCPT", b"TO:<" + a.encode(encoding) + b">") for a in plan.rcpt.values()]
            lines.append(command(b"DATA"))
            replies = await pipelined(smtp, b"".join(lines), len(lines), smtp.timeout)
            # RSET only proves the connection alive (a drop has raised by now); MAIL's reply decides.
            mail_reply, rcpt_replies, data_reply = replies[rset], replies[rset + 1 : -1], replies[-1]
            if any(reply.code == 421 for reply in replies):
                smtp.close()  # the server is closing the connection (aiosmtplib's commands do the same)
            elif data_reply.code == 354 and (
                mail_reply.code != 250 or all(r.code not in (250, 251) for r in rcpt_replies)
            ):
                smtp.close()  # DATA started with nothing to send: never leave it open or cache it
            if mail_reply.code != 250:
                for recipient in plan.rcpt:
                    statuses[recipient] = status_from_reply(
                        recipient, mail_reply.code, mail_reply.message, mx_name
                    )
                reply = reply_text(mail_reply.code, mail_reply.message)
                return SessionResult([statuses[r] for r in recipients], False, reply, tls)
            accepted: list[str] = []
            for recipient, rcpt_reply in zip(plan.rcpt, rcpt_replies, strict=True):
                if rcpt_reply.code in (250, 251):
                    accepted.append(recipient)
                else:
                    statuses[recipient] = status_from_reply(
                        recipient, rcpt_reply.code, rcpt_reply.message, mx_name
                    )
            if not accepted:
                last = next(reversed(statuses.values()))
                return SessionResult([statuses[r] for r in recipients], False, last.diagnostic or "", tls)
            if data_reply.code != 354:
                code, message = data_reply.code, data_reply.message
            else:
                data_sent = True  # the message is on its way (RFC 1047): never send it again
                (final,) = await pipelined(smtp, data_payload(body), 1, smtp.timeout)
                code, message = final.code, final.message
                if code == 421:
                    smtp.close()
        else:
            try:
                await smtp.mail(plan.mail_from, options=mail_options, encoding=encoding)
            except aiosmtplib.SMTPSenderRefused as exc:
                for recipient in plan.rcpt:
                    statuses[recipient] = status_from_reply(recipient, exc.code, exc.message, mx_name)
                return SessionResult(
                    [statuses[r] for r in recipients], False, reply_text(exc.code, exc.message), tls
                )

            accepted = []
            for recipient, address in plan.rcpt.items():
                try:
                    await smtp.rcpt(address, encoding=encoding)
                    accepted.append(recipient)
                except aiosmtplib.SMTPRecipientRefused as exc:
                    statuses[recipient] = status_from_reply(recipient, exc.code, exc.message, mx_name)
            if not accepted:
                last = next(reversed(statuses.values()))
                return SessionResult([statuses[r] for r in recipients], False, last.diagnostic or "", tls)

            data_sent = True  # from here on the server may have the message (RFC 1047): never send it again
            try:
                response: SMTPResponse = await smtp.data(body)
                code, message = response.code, response.message
            except aiosmtplib.SMTPDataError as exc:
                code, message = exc.code, exc.message
        for recipient in accepted:
            statuses[recipient] = status_from_reply(recipient, code, message, mx_name)
        if on_accepted is not None and 200 <= code < 300:
            await on_accepted([statuses[r] for r in accepted])
        return SessionResult([statuses[r] for r in recipients], False, reply_text(code, message), tls)
    except aiosmtplib.SMTPResponseException as exc:
        # An unexpected reply mid-transaction (421 included: aiosmtplib has closed the connection then).
        smtp.close()
        reply = reply_text(exc.code, exc.message)
        state = RecipientState.FAILED if 500 <= exc.code < 600 else RecipientState.DEFERRED
        return SessionResult(
            _all(recipients, state, enhanced_status(exc.code, exc.message), reply, mx_name), False, reply, tls
        )
    except ValueError as exc:  # UnicodeError, or a control character refused by `command`
        # `_plan` sends nothing a server cannot take, so this is a bug; still never crash the relay (the
        # entry would end in the dead-letter stream with no DSN): nothing was delivered, say why.
        smtp.close()
        reply = f"address cannot be sent to {mx_name}: {exc}"
        return SessionResult(
            _all(recipients, RecipientState.FAILED, "5.6.7", reply, mx_name), False, reply, tls
        )
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        smtp.close()
        if connection.transactions and not data_sent:
            return _STALE
        return _failure(exc, recipients, address, mx_name, True, tls)
    except BaseException:
        smtp.close()  # cancelled mid-conversation: the connection is in an unknown state
        raise


def _failure(
    exc: BaseException,
    recipients: list[str],
    address: str,
    mx_name: str,
    transaction_started: bool,
    tls: bool,
) -> SessionResult:
    if isinstance(exc, TlsRequired):
        # Not this host, maybe the next one; else the message waits for a server we can trust.
        return SessionResult(
            _all(recipients, RecipientState.DEFERRED, exc.status, str(exc), mx_name), True, str(exc), tls
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        # A bad greeting or EHLO/HELO reply: the next host may do better.
        reply = reply_text(exc.code, exc.message)
        state = RecipientState.FAILED if 500 <= exc.code < 600 else RecipientState.DEFERRED
        status = enhanced_status(exc.code, exc.message)
        return SessionResult(
            _all(recipients, state, status, reply, mx_name), not transaction_started, reply, tls
        )
    # No connection, a timeout, or the connection dropped: nothing was accepted, try again later.
    reply = _describe(exc)
    status = "4.4.1" if not transaction_started else "4.4.2"
    return SessionResult(
        _all(recipients, RecipientState.DEFERRED, status, f"{address}: {reply}", mx_name),
        not transaction_started,
        reply,
        tls,
    )
