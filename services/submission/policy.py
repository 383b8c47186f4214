"""What the two roles have in common when they judge a sender or a recipient.

Each role (`mx_policy`, `submission_policy`) answers two questions: may this MAIL FROM start a
transaction, and where (if anywhere) does this RCPT TO go. The SMTP session (`session`) asks, and
replies with what they say.
"""

from dataclasses import dataclass
from typing import Protocol

from services.submission import replies
from services.submission.addresses import Mailbox
from shared.auth_client import AuthUnavailable
from shared.auth_protocols import RecipientDirectory
from shared.config.submission import SmtpRole
from shared.streams import LOCAL_DELIVERY


@dataclass(frozen=True)
class SenderDecision:
    reply: str
    sender: str | None = None  # the reverse-path to record ("" = null sender) when accepted


@dataclass(frozen=True)
class RecipientDecision:
    reply: str
    address: str | None = None  # the canonical address when accepted
    stream: str | None = None  # LOCAL_DELIVERY or OUTBOUND when accepted

    @property
    def accepted(self) -> bool:
        return self.address is not None


class RolePolicy(Protocol):
    role: SmtpRole
    offers_auth: bool
    adds_missing_headers: bool  # Message-ID and Date (RFC 6409 §8): submission only

    async def check_sender(self, address: str, auth_user: str | None) -> SenderDecision: ...

    async def check_recipient(self, mailbox: Mailbox, auth_user: str | None) -> RecipientDecision: ...


async def local_recipient(auth: RecipientDirectory, mailbox: Mailbox) -> RecipientDecision:
    """A recipient in one of our domains: it must exist and be enabled (unknown and disabled look alike)."""
    try:
        info = await auth.recipient(mailbox.address)
    except AuthUnavailable:
        return RecipientDecision(replies.LOOKUP_FAILED.format(address=mailbox.address))
    if not info.deliverable:
        return RecipientDecision(replies.UNKNOWN_USER.format(address=mailbox.address))
    return RecipientDecision(replies.RECIPIENT_OK, address=info.address, stream=LOCAL_DELIVERY)
