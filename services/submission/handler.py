"""aiosmtpd handler hooks: MAIL and RCPT asked of the role's policy, DATA stored and published.

aiosmtpd has already checked the command syntax (and SIZE against the limit) when these run. A hook
that accepts must record the address on the envelope itself; its return value is the reply.
"""

import logging

from redis.exceptions import RedisError

from services.submission import replies
from services.submission.acceptance import MailLoop, MessageQueue, Transaction, accept_message
from services.submission.addresses import is_ascii, parse_mailbox
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
        self,
        server: ReceptionSMTP,
        session: object,
        envelope: TransactionEnvelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if not is_ascii(address) and not envelope.smtp_utf8:
            return replies.UTF8_ADDRESS_NEEDS_SMTPUTF8
        decision = await self.policy.check_sender(address, server.logged_in_user())
        if decision.sender is None:
            log.info(
                "sender refused",
                extra={"sender": address, "reply": decision.reply, "client": server.peer_ip()},
            )
            return decision.reply
        envelope.mail_from = address  # aiosmtpd's own "<>" for the null sender: truthy, as it expects
        envelope.mail_options.extend(mail_options)
        envelope.sender = decision.sender
        return decision.reply

    async def handle_RCPT(
        self,
        server: ReceptionSMTP,
        session: object,
        envelope: TransactionEnvelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        envelope.rcpt_attempts += 1
        if len(envelope.routes) >= self.settings.max_recipients:
            if envelope.rcpt_attempts > 2 * self.settings.max_recipients:
                return replies.TOO_MANY_RECIPIENTS_OVERSHOOT
            return replies.TOO_MANY_RECIPIENTS
        mailbox = parse_mailbox(address)
        if mailbox is None:
            return replies.RECIPIENT_SYNTAX
        if not is_ascii(address) and not envelope.smtp_utf8:
            return replies.UTF8_ADDRESS_NEEDS_SMTPUTF8
        decision = await self.policy.check_recipient(mailbox, server.logged_in_user())
        if not decision.accepted:
            log.info(
                "recipient refused",
                extra={"recipient": mailbox.address, "reply": decision.reply, "client": server.peer_ip()},
            )
            return decision.reply
        assert decision.address is not None and decision.stream is not None
        if decision.address not in envelope.routes:  # a repeated recipient gets the message once
            envelope.routes[decision.address] = decision.stream
            envelope.rcpt_tos.append(decision.address)
            envelope.rcpt_options.extend(rcpt_options)
        return decision.reply

    async def handle_DATA(self, server: ReceptionSMTP, session: object, envelope: TransactionEnvelope) -> str:
        assert isinstance(envelope.original_content, bytes) and envelope.sender is not None
        transaction = Transaction(
            sender=envelope.sender,
            routes=dict(envelope.routes),
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
            )
        except MailLoop as loop:
            log.info("mail loop", extra={"received_headers": loop.args[0], "client": server.peer_ip()})
            return replies.MAIL_LOOP
        except (RedisError, OSError) as exc:
            log.error("could not store message", extra={"error": repr(exc), "client": server.peer_ip()})
            return replies.TEMPORARY_FAILURE
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
