r"""Delivery Status Notifications (RFC 3464): the message that tells a sender their mail failed or is late.

A DSN is a `multipart/report; report-type=delivery-status` (RFC 6522) with three parts:
1. text/plain for people: what happened to which recipient,
2. message/delivery-status for programs: one per-message block, then one block per recipient,
3. text/rfc822-headers: the original message's header (not its body: the sender has that, and a bounce
   should not carry a large or dangerous payload back).

It is sent from the null sender and marked `Auto-Submitted: auto-replied` (RFC 3834), so no well-behaved
system answers it; `shared.bounce` decides whether to send one at all.

Internationalized addresses (RFC 6533): an address that is not ASCII is typed `utf-8` in the
message/delivery-status part, in its 7-bit `utf-8-addr-xtext` form (`utf-8; j\x{F6}rg@example.test`), never
as an RFC 2047 encoded-word (which is not allowed in an address). The part stays message/delivery-status, so
every DSN reader can parse it, and a DSN to an ASCII sender stays 7-bit (the text part and UTF-8 original
headers are quoted-printable; the headers then as message/global-headers, RFC 6533 §6.3). A DSN to a
non-ASCII sender is itself an internationalized message (RFC 6532: raw UTF-8 in its To: header).
"""

import quopri
import re
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from shared.models import Envelope, RecipientStatus, utcnow

FAILED_SUBJECT = "Undelivered Mail Returned to Sender"
DELAYED_SUBJECT = "Delayed Mail (still being retried)"

# A diagnostic that starts like an SMTP reply ("550 5.1.1 ...") is one; anything else is our own words.
_SMTP_REPLY = re.compile(r"^[245]\d\d[ -]")


def original_headers(original: bytes) -> str:
    """The header section of a raw message (up to the first empty line), as text."""
    match = re.search(rb"\r?\n\r?\n", original)
    head = original[: match.start()] if match else original
    # Headers should be ASCII; a broken 8-bit one must not stop the bounce from being built.
    return head.decode("utf-8", errors="replace").replace("\r\n", "\n") + "\n"


def _embedded(char: str) -> str:
    # RFC 6533 §3 EmbeddedUnicodeChar: "\x{" HEXPOINT "}", upper-case hex, at least two digits.
    return f"\\x{{{ord(char):02X}}}"


def utf8_addr_xtext(address: str) -> str:
    """RFC 6533 utf-8-addr-xtext: QCHARs as they are; anything else (non-ASCII, controls, space, "\\",
    "+", "=") as an EmbeddedUnicodeChar."""
    return "".join(c if "!" <= c <= "~" and c not in "\\+=" else _embedded(c) for c in address)


def typed_address(address: str) -> str:
    """An address with its RFC 3464 address type: `rfc822; a@b`, or `utf-8; <xtext>` when not ASCII."""
    if address.isascii():
        return f"rfc822; {address}"
    return f"utf-8; {utf8_addr_xtext(address)}"


def _diagnostic_code(diagnostic: str) -> str:
    # RFC 3464 §2.3.6: the diagnostic-type says how to read the text. A remote reply is "smtp"; our own
    # explanations (no MX, expired, mailbox full) use an X- type, as Postfix does with "X-Postfix".
    kind = "smtp" if _SMTP_REPLY.match(diagnostic) else "X-Yubin"
    # message/delivery-status is ASCII: a UTF-8 reply keeps its non-ASCII characters as \x{..}.
    text = "".join(c if c.isascii() else _embedded(c) for c in " ".join(diagnostic.split()))
    return f"{kind}; {text}"


def _human_text(
    envelope: Envelope, statuses: list[RecipientStatus], reporting_mta: str, delayed: bool, until: str | None
) -> str:
    lines = [f"This is the mail system at host {reporting_mta}.", ""]
    if delayed:
        lines += [
            "####################################################################",
            "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #",
            "####################################################################",
            "",
            "Your message could not be delivered yet to one or more recipients.",
            f"It will be retried until {until}." if until else "It will be retried.",
        ]
    else:
        lines += [
            "I'm sorry to have to inform you that your message could not",
            "be delivered to one or more recipients. Its headers are attached below.",
        ]
    lines += ["", f"Queue ID: {envelope.queue_id}"]
    if envelope.message_id:
        lines.append(f"Message-ID: {envelope.message_id}")
    lines.append("")
    for status in statuses:
        reason = status.diagnostic or f"status {status.status}"
        host = f" (host {status.remote_mta} said)" if status.remote_mta else ""
        lines.append(f"<{status.recipient}>{host}: {reason}")
    return "\n".join(lines) + "\n"


def _status_blocks(
    envelope: Envelope,
    statuses: list[RecipientStatus],
    reporting_mta: str,
    delayed: bool,
    until: str | None,
) -> list[EmailMessage]:
    per_message = EmailMessage(policy=policy.SMTP)
    per_message["Reporting-MTA"] = f"dns; {reporting_mta}"
    per_message["X-Yubin-Queue-ID"] = envelope.queue_id
    per_message["Arrival-Date"] = format_datetime(envelope.received_at)
    blocks = [per_message]
    for status in statuses:
        block = EmailMessage(policy=policy.SMTP)
        original = envelope.original_recipients.get(status.recipient)
        if original:  # the alias the sender wrote, before expansion (RFC 3464 §2.3.1)
            block["Original-Recipient"] = typed_address(original)
        block["Final-Recipient"] = typed_address(status.recipient)
        block["Action"] = "delayed" if delayed else "failed"
        block["Status"] = status.status
        if status.remote_mta:
            block["Remote-MTA"] = f"dns; {status.remote_mta}"
        if status.diagnostic:
            block["Diagnostic-Code"] = _diagnostic_code(status.diagnostic)
        if delayed and until:
            block["Will-Retry-Until"] = until
        blocks.append(block)
    return blocks


def build_dsn(
    envelope: Envelope,
    statuses: list[RecipientStatus],
    original: bytes | None,
    reporting_mta: str,
    *,
    delayed: bool = False,
    will_retry_until: datetime | None = None,
) -> bytes:
    """The raw DSN (CRLF line endings) reporting `statuses` of `envelope` back to its sender.

    Every status given is reported: as `Action: failed`, or `Action: delayed` when `delayed` (then
    `will_retry_until`, if known, says when we give up). `original` is the original raw message, if the
    body is still there; only its header is included.
    """
    until = format_datetime(will_retry_until) if will_retry_until else None
    # To a non-ASCII sender the DSN is an internationalized message (RFC 6532): its To: is raw UTF-8.
    report = EmailMessage(policy=policy.SMTP if envelope.sender.isascii() else policy.SMTPUTF8)
    report["From"] = f'"Mail Delivery System" <MAILER-DAEMON@{reporting_mta}>'
    report["To"] = envelope.sender
    report["Subject"] = DELAYED_SUBJECT if delayed else FAILED_SUBJECT
    report["Date"] = format_datetime(utcnow())
    report["Message-ID"] = make_msgid(domain=reporting_mta)
    report["Auto-Submitted"] = "auto-replied"
    text = _human_text(envelope, statuses, reporting_mta, delayed, until)
    report.set_content(text, cte="7bit" if text.isascii() else "quoted-printable")
    # make_mixed moves the text into a first subpart; then the container becomes the report (RFC 6522).
    report.make_mixed()
    report.set_type("multipart/report")
    report.set_param("report-type", "delivery-status")

    status_part = EmailMessage(policy=policy.SMTP)
    status_part["Content-Type"] = "message/delivery-status"
    status_part["Content-Description"] = "Delivery report"
    # The generator writes a message/delivery-status payload as header blocks separated by empty lines.
    status_part.set_payload(_status_blocks(envelope, statuses, reporting_mta, delayed, until))
    report.attach(status_part)

    if original is not None:
        report.attach(_headers_part(original_headers(original)))
    return report.as_bytes(policy=report.policy)


def _headers_part(headers: str) -> EmailMessage:
    part = EmailMessage(policy=policy.SMTP)
    if headers.isascii():
        part.set_content(headers, subtype="rfc822-headers")
        del part["MIME-Version"]  # set_content adds it; only the top level needs one
    else:
        # UTF-8 headers (RFC 6532) are message/global-headers (RFC 6533 §6.3), quoted-printable so the
        # DSN stays 7-bit for a sender whose server has neither SMTPUTF8 nor 8BITMIME.
        part["Content-Type"] = "message/global-headers"
        part["Content-Transfer-Encoding"] = "quoted-printable"
        part.set_payload(quopri.encodestring(headers.replace("\n", "\r\n").encode()).decode("ascii"))
    part["Content-Description"] = "Undelivered Message Headers"
    return part
