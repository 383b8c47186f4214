"""The submission role (port 587, RFC 6409): logged-in users send as themselves, to anyone.

MAIL needs AUTH and must name the user's own address. Recipients in our domains must exist (like
Postfix's reject_unlisted_recipient) and go to local delivery; all others go to the relay.
"""

from services.submission import replies
from services.submission.addresses import Mailbox, parse_mailbox
from services.submission.local_domains import LocalDomains
from services.submission.paths import PathArgument
from services.submission.policy import RecipientDecision, SenderDecision, local_recipient
from shared.auth_client import AuthUnavailable
from shared.auth_protocols import RecipientDirectory
from shared.config.submission import SmtpRole
from shared.streams import OUTBOUND


def owns(auth_user: str, mailbox: Mailbox) -> bool:
    """Local part exact, domain case-insensitive (RFC 5321 §2.4: only the domain is case-blind)."""
    owner = parse_mailbox(auth_user)
    return owner is not None and owner.local == mailbox.local and owner.domain == mailbox.domain


class SubmissionPolicy:
    role = SmtpRole.SUBMISSION
    offers_auth = True
    adds_missing_headers = True

    def __init__(self, auth: RecipientDirectory, domains: LocalDomains) -> None:
        self._auth = auth
        self._domains = domains

    async def check_sender(self, path: PathArgument, auth_user: str | None) -> SenderDecision:
        if auth_user is None:
            return SenderDecision(replies.AUTH_REQUIRED)
        mailbox = path.mailbox
        if mailbox is None:
            return SenderDecision(replies.NULL_SENDER_REFUSED)
        if not owns(auth_user, mailbox):
            return SenderDecision(replies.SENDER_NOT_OWNED.format(address=mailbox.address, user=auth_user))
        return SenderDecision(replies.SENDER_OK, sender=mailbox.address)

    async def check_recipient(
        self, mailbox: Mailbox, auth_user: str | None, *, local_only: bool = False
    ) -> RecipientDecision:
        if auth_user is None:
            return RecipientDecision(replies.AUTH_REQUIRED)
        try:
            ours = await self._domains.contains(mailbox.domain)
        except AuthUnavailable:
            return RecipientDecision(replies.LOOKUP_FAILED.format(address=mailbox.address))
        if ours:
            return await local_recipient(self._auth, self._domains, mailbox)
        if local_only:
            return RecipientDecision(replies.UNKNOWN_USER.format(address=mailbox.address))
        if mailbox.domain.startswith("["):
            # The relay routes by MX only (RFC 5321 §4.1.3 lets a server refuse address literals).
            return RecipientDecision(replies.ADDRESS_LITERAL.format(address=mailbox.address))
        return RecipientDecision(
            replies.RECIPIENT_OK, address=mailbox.address, routes={mailbox.address: OUTBOUND}
        )
