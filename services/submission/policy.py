"""What the two roles have in common when they judge a sender or a recipient.

Each role (`mx_policy`, `submission_policy`) answers two questions: may this MAIL FROM start a
transaction, and where (if anywhere) does this RCPT TO go. The SMTP session (`session`) asks, and
replies with what they say.
"""

from dataclasses import dataclass, field
from typing import Protocol

from services.submission import replies
from services.submission.addresses import Mailbox
from services.submission.local_domains import LocalDomains
from services.submission.paths import PathArgument
from shared.auth_client import AuthUnavailable
from shared.auth_protocols import RecipientDirectory
from shared.config.submission import SmtpRole
from shared.streams import LOCAL_DELIVERY, OUTBOUND


@dataclass(frozen=True)
class SenderDecision:
    reply: str
    sender: str | None = None  # the reverse-path to record ("" = null sender) when accepted


@dataclass(frozen=True)
class RecipientDecision:
    reply: str
    address: str | None = None  # the canonical RCPT address when accepted
    routes: dict[str, str] = field(default_factory=dict)
    """Where it goes when accepted: final recipient → LOCAL_DELIVERY or OUTBOUND. One entry for a
    mailbox or a remote address, the alias's expansion for an alias."""

    @property
    def accepted(self) -> bool:
        return self.address is not None


class RolePolicy(Protocol):
    role: SmtpRole
    offers_auth: bool
    adds_missing_headers: bool  # Message-ID and Date (RFC 6409 §8): submission only

    async def check_sender(self, path: PathArgument, auth_user: str | None) -> SenderDecision: ...

    async def check_recipient(
        self, mailbox: Mailbox, auth_user: str | None, *, local_only: bool = False
    ) -> RecipientDecision:
        """`local_only`: refuse rather than relay (the bare `<Postmaster>` is always ours)."""
        ...


async def local_recipient(
    auth: RecipientDirectory, domains: LocalDomains, mailbox: Mailbox
) -> RecipientDecision:
    """A recipient in one of our domains: a mailbox that exists and is enabled (unknown and disabled look
    alike), or an alias, expanded here by the auth service (loops and depth are bounded there), so that
    its local destinations go to local delivery and its remote ones to the relay in the same MULTI."""
    try:
        info = await auth.recipient(mailbox.address)
        if info.destinations is None:
            if not info.deliverable:
                return RecipientDecision(replies.UNKNOWN_USER.format(address=mailbox.address))
            return RecipientDecision(
                replies.RECIPIENT_OK, address=info.address, routes={info.address: LOCAL_DELIVERY}
            )
        if not info.destinations:
            return RecipientDecision(replies.ALIAS_LOOP.format(address=mailbox.address))
        routes = {}
        for destination in info.destinations:
            local = await domains.contains(destination.rpartition("@")[2])
            routes[destination] = LOCAL_DELIVERY if local else OUTBOUND
    except AuthUnavailable:
        return RecipientDecision(replies.LOOKUP_FAILED.format(address=mailbox.address))
    return RecipientDecision(replies.RECIPIENT_OK, address=info.address, routes=routes)
