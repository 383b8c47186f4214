"""One SMTP conversation with one remote address (aiosmtplib): EHLO, STARTTLS, MAIL, RCPT..., DATA.

The result is one `RecipientStatus` per recipient, taken from the remote server's replies. A failure before
the mail transaction started (no connection, bad greeting, EHLO or TLS trouble) is a *host* failure: the
caller tries the next address or MX host; anything later is the final word of this host.
"""

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiosmtplib
from aiosmtplib import SMTP, SMTPResponse

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
    """The TLS handshake after STARTTLS failed; the caller may try again without TLS."""


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


def _all(
    recipients: list[str], state: RecipientState, status: str, diagnostic: str, mta: str
) -> list[RecipientStatus]:
    return [
        RecipientStatus(recipient=r, state=state, status=status, diagnostic=diagnostic, remote_mta=mta)
        for r in recipients
    ]


def _mail_options(smtp: SMTP, sender: str, recipients: list[str], body: bytes) -> list[str]:
    options: list[str] = []
    if smtp.supports_extension("size"):
        options.append(f"SIZE={len(body)}")
    if smtp.supports_extension("8bitmime") and any(byte > 127 for byte in body):
        options.append("BODY=8BITMIME")
    if smtp.supports_extension("smtputf8") and not all(a.isascii() for a in [sender, *recipients]):
        options.append("SMTPUTF8")
    return options


def _size_limit(smtp: SMTP) -> int:
    """The remote's advertised SIZE limit (RFC 1870), 0 when it has none."""
    value = smtp.esmtp_extensions.get("size", "")
    return int(value) if value.isdigit() else 0


async def _greet(smtp: SMTP, options: SessionOptions, mx_name: str, use_tls: bool) -> bool:
    """EHLO (HELO as a fallback) and STARTTLS when offered; returns whether TLS is on."""
    try:
        await smtp.ehlo()
    except aiosmtplib.SMTPHeloError:
        await smtp.helo()
        return False
    if use_tls and options.starttls and smtp.supports_extension("starttls"):
        try:
            await smtp.starttls(server_hostname=mx_name, validate_certs=options.tls_verify)
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise StartTlsFailed(str(exc)) from exc
        await smtp.ehlo()  # RFC 3207: forget what was learned before TLS
        return True
    return False


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
) -> SessionResult:
    """Deliver `body` to `recipients` through the server at `address` (whose MX name is `mx_name`)."""
    smtp = SMTP(
        hostname=address,
        port=options.port,
        local_hostname=options.helo_name,
        timeout=options.command_timeout,
        start_tls=False,  # STARTTLS is decided here, after reading the EHLO reply
        validate_certs=options.tls_verify,
    )
    tls = False
    transaction_started = False
    try:
        await smtp.connect(timeout=options.connect_timeout)
        tls = await _greet(smtp, options, mx_name, use_tls)

        limit = _size_limit(smtp)
        if limit and len(body) > limit:
            reply = f"message size {len(body)} exceeds the limit {limit} of {mx_name}"
            return SessionResult(
                _all(recipients, RecipientState.FAILED, "5.3.4", reply, mx_name), False, reply, tls
            )

        transaction_started = True
        mail_options = _mail_options(smtp, sender, recipients, body)
        encoding = "utf-8" if "SMTPUTF8" in mail_options else "ascii"
        try:
            await smtp.mail(sender, options=mail_options, encoding=encoding)
        except aiosmtplib.SMTPSenderRefused as exc:
            refused = [status_from_reply(r, exc.code, exc.message, mx_name) for r in recipients]
            return SessionResult(refused, False, reply_text(exc.code, exc.message), tls)

        statuses: dict[str, RecipientStatus] = {}
        accepted: list[str] = []
        for recipient in recipients:
            try:
                await smtp.rcpt(recipient, encoding=encoding)
                accepted.append(recipient)
            except aiosmtplib.SMTPRecipientRefused as exc:
                statuses[recipient] = status_from_reply(recipient, exc.code, exc.message, mx_name)
        if not accepted:
            await _quit(smtp)
            last = next(reversed(statuses.values()))
            return SessionResult(list(statuses.values()), False, last.diagnostic or "", tls)

        try:
            response: SMTPResponse = await smtp.data(body)
            code, message = response.code, response.message
        except aiosmtplib.SMTPDataError as exc:
            code, message = exc.code, exc.message
        for recipient in accepted:
            statuses[recipient] = status_from_reply(recipient, code, message, mx_name)
        if on_accepted is not None and 200 <= code < 300:
            await on_accepted([statuses[r] for r in accepted])
        await _quit(smtp)
        return SessionResult([statuses[r] for r in recipients], False, reply_text(code, message), tls)
    except StartTlsFailed:
        smtp.close()
        raise
    except aiosmtplib.SMTPResponseException as exc:
        # A bad greeting or EHLO/HELO reply, or an unexpected reply mid-transaction.
        smtp.close()
        reply = reply_text(exc.code, exc.message)
        state = RecipientState.FAILED if 500 <= exc.code < 600 else RecipientState.DEFERRED
        status = enhanced_status(exc.code, exc.message)
        return SessionResult(
            _all(recipients, state, status, reply, mx_name), not transaction_started, reply, tls
        )
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        # No connection, a timeout, or the connection dropped: nothing was accepted, try again later.
        smtp.close()
        reply = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        status = "4.4.1" if not transaction_started else "4.4.2"
        return SessionResult(
            _all(recipients, RecipientState.DEFERRED, status, f"{address}: {reply}", mx_name),
            not transaction_started,
            reply,
            tls,
        )


async def _quit(smtp: SMTP) -> None:
    try:
        await smtp.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        smtp.close()  # the mail is already accepted; a rude goodbye changes nothing
