"""aiosmtpd handler hooks: MAIL and RCPT asked of the role's policy, DATA stored and published.

MAIL and RCPT get the raw argument (`FROM:<...> params`): the grammar is `paths`, the parameters are
checked here, the decision is the policy's. A hook that accepts records what it accepted on the envelope
itself; its return value is the reply.
"""

import logging

from aiosmtpd.smtp import Session
from redis.exceptions import RedisError

from services.submission import metrics, replies
from services.submission.acceptance import MailLoop, MessageQueue, Transaction, accept_message
from services.submission.addresses import NULL_PATH, Mailbox
from services.submission.paths import KeywordError, PathSyntaxError, parse_mail_argument, parse_rcpt_argument
from services.submission.policy import RolePolicy
from services.submission.session import ReceptionSMTP, TransactionEnvelope
from shared.config.submission import SubmissionSettings
from shared.log import log_context

log = logging.getLogger(__name__)


class ReceptionHandler:
    def __init__(self, settings: SubmissionSettings, policy: RolePolicy, queue: MessageQueue) -> None:
        self.settings = settings
        self.policy = policy
        self.queue = queue

    async def handle_MAIL(
        self, server: ReceptionSMTP, session: Session, envelope: TransactionEnvelope, arg: str
    ) -> str:
        try:
            path = parse_mail_argument(arg)
        except KeywordError:
            return replies.MAIL_SYNTAX
        except PathSyntaxError as exc:
            log.info("bad sender syntax", extra={"error": str(exc), "client": server.peer_ip()})
            return replies.SENDER_SYNTAX
        refusal = self._mail_parameters(session, envelope, path.parameters)
        if refusal is not None:
            return refusal
        if not path.ascii and not envelope.smtp_utf8:
            return replies.UTF8_ADDRESS_NEEDS_SMTPUTF8
        decision = await self.policy.check_sender(path, server.logged_in_user())
        if decision.sender is None:
            log.info(
                "sender refused",
                extra={
                    "sender": path.mailbox.address if path.mailbox else "<>",
                    "reply": decision.reply,
                    "client": server.peer_ip(),
                },
            )
            return decision.reply
        envelope.mail_from = decision.sender or NULL_PATH  # aiosmtpd expects a truthy mail_from
        envelope.mail_options.extend(f"{k}={v}" if v is not None else k for k, v in path.parameters.items())
        envelope.sender = decision.sender
        return decision.reply

    def _mail_parameters(
        self, session: Session, envelope: TransactionEnvelope, parameters: dict[str, str | None]
    ) -> str | None:
        """BODY (RFC 6152), SMTPUTF8 (RFC 6531) and SIZE (RFC 1870); the refusal, or None."""
        if parameters and not session.extended_smtp:
            return replies.PARAMETERS_WITHOUT_EHLO
        unknown = set(parameters) - {"BODY", "SMTPUTF8", "SIZE"}
        if unknown:
            return replies.PARAMETERS_UNKNOWN.format(verb="MAIL FROM")
        if (parameters.get("BODY") or "7BIT").upper() not in ("7BIT", "8BITMIME"):
            return replies.BODY_UNSUPPORTED
        if "SMTPUTF8" in parameters and parameters["SMTPUTF8"] is not None:
            return replies.SMTPUTF8_VALUE
        size = parameters.get("SIZE")
        if "SIZE" in parameters and (size is None or not size.isdigit() or len(size) > 20):
            return replies.SIZE_SYNTAX
        if size is not None and int(size) > self.settings.max_message_size:
            return replies.SIZE_TOO_BIG
        envelope.smtp_utf8 = "SMTPUTF8" in parameters
        return None

    async def handle_RCPT(
        self, server: ReceptionSMTP, session: Session, envelope: TransactionEnvelope, arg: str
    ) -> str:
        envelope.rcpt_attempts += 1
        if len(envelope.routes) >= self.settings.max_recipients:
            if envelope.rcpt_attempts > 2 * self.settings.max_recipients:
                return replies.TOO_MANY_RECIPIENTS_OVERSHOOT
            return replies.TOO_MANY_RECIPIENTS
        try:
            path = parse_rcpt_argument(arg)
        except KeywordError:
            return replies.RCPT_SYNTAX
        except PathSyntaxError as exc:
            log.info("bad recipient syntax", extra={"error": str(exc), "client": server.peer_ip()})
            return replies.RECIPIENT_SYNTAX
        if path.parameters:
            if not session.extended_smtp:
                return replies.PARAMETERS_WITHOUT_EHLO
            return replies.PARAMETERS_UNKNOWN.format(verb="RCPT TO")  # no DSN (RFC 3461) yet
        if not path.ascii and not envelope.smtp_utf8:
            return replies.UTF8_ADDRESS_NEEDS_SMTPUTF8
        mailbox = path.mailbox or Mailbox(local="postmaster", domain=self.settings.own_domain)
        decision = await self.policy.check_recipient(
            mailbox, server.logged_in_user(), local_only=path.postmaster
        )
        if not decision.accepted:
            log.info(
                "recipient refused",
                extra={"recipient": mailbox.address, "reply": decision.reply, "client": server.peer_ip()},
            )
            return decision.reply
        assert decision.address is not None
        for recipient, stream in decision.routes.items():
            if recipient not in envelope.routes:  # a repeated recipient gets the message once
                envelope.routes[recipient] = stream
                envelope.rcpt_tos.append(recipient)
                if recipient != decision.address:
                    envelope.original_recipients[recipient] = decision.address
        return decision.reply

    async def handle_DATA(self, server: ReceptionSMTP, session: object, envelope: TransactionEnvelope) -> str:
        assert isinstance(envelope.original_content, bytes) and envelope.sender is not None
        transaction = Transaction(
            sender=envelope.sender,
            routes=dict(envelope.routes),
            original_recipients=dict(envelope.original_recipients),
            auth_user=server.logged_in_user(),
            client=server.client_info(),
        )
        try:
            accepted = await accept_message(
                self.queue,
                envelope.original_content,
                transaction,
                hostname=self.settings.hostname,
                role=self.policy.role.value,
                add_missing_headers=self.policy.adds_missing_headers,
                trace_subject=self.settings.trace_subjects,
            )
        except MailLoop as loop:
            log.info("mail loop", extra={"received_headers": loop.args[0], "client": server.peer_ip()})
            return replies.MAIL_LOOP
        except (RedisError, OSError) as exc:
            log.error("could not store message", extra={"error": repr(exc), "client": server.peer_ip()})
            return replies.TEMPORARY_FAILURE
        metrics.accepted(self.policy.role.value, len(envelope.original_content))
        with log_context(queue_id=accepted.queue_id, message_id=accepted.message_id):
            log.info(
                "message accepted",
                extra={
                    "sender": transaction.sender,
                    "recipients": list(transaction.routes),
                    "auth_user": transaction.auth_user,
                    "client": transaction.client.address,
                    "size": len(envelope.original_content),
                },
            )
        return replies.QUEUED.format(queue_id=accepted.queue_id)

    async def handle_exception(self, error: Exception) -> str:
        log.error("session error", exc_info=error)
        return replies.TEMPORARY_FAILURE
