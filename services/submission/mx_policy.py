"""The MX role (port 25): anyone may deliver, but only to existing mailboxes in our own domains.

No AUTH, no relaying. Sender-specified routing in the local part (`user%other@us`, `"user@other"@us`,
`other!user@us`) is refused as relaying, like Postfix with `allow_untrusted_routing = no`.
"""

from services.submission import replies
from services.submission.addresses import Mailbox
from services.submission.local_domains import LocalDomains
from services.submission.paths import PathArgument
from services.submission.policy import RecipientDecision, SenderDecision, local_recipient
from shared.auth_client import AuthUnavailable
from shared.auth_protocols import RecipientDirectory
from shared.config.submission import SmtpRole
from shared.models import NULL_SENDER


class MxPolicy:
    role = SmtpRole.MX
    offers_auth = False
    adds_missing_headers = False

    def __init__(self, auth: RecipientDirectory, domains: LocalDomains) -> None:
        self._auth = auth
        self._domains = domains

    async def check_sender(self, path: PathArgument, auth_user: str | None) -> SenderDecision:
        if path.mailbox is None:
            return SenderDecision(replies.SENDER_OK, sender=NULL_SENDER)  # bounces (RFC 5321 §4.5.5)
        return SenderDecision(replies.SENDER_OK, sender=path.mailbox.address)

    async def check_recipient(
        self, mailbox: Mailbox, auth_user: str | None, *, local_only: bool = False
    ) -> RecipientDecision:
        try:
            ours = await self._domains.contains(mailbox.domain)
        except AuthUnavailable:
            return RecipientDecision(replies.LOOKUP_FAILED.format(address=mailbox.address))
        if not ours or mailbox.has_routing:
            return RecipientDecision(replies.RELAY_DENIED.format(address=mailbox.address))
        return await local_recipient(self._auth, self._domains, mailbox)
