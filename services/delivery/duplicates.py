"""Duplicate suppression: one copy per Message-ID and mailbox, whatever queue id the copies came with.

Why: the SMTP hop can duplicate. When a sending relay dies after our MX stored the message but before it
recorded our 250 (or the 250 is lost on the way: RFC 1047), it sends the message again and our MX accepts
it under a new queue id. The queue-id idempotency of `handler` cannot see that; the Message-ID can. This
is Cyrus IMAP's `duplicatesuppression` (imapd.conf, on by default): lmtpd suppresses delivery of a message
to a mailbox when a message with the same Message-ID was already delivered to it.

How: before writing the file, the delivery claims `yubin:delivery:msgid:<sha256(Message-ID)>:<recipient>`
with SET NX, value = its queue id, with a TTL. A claim held by ANOTHER queue id means this copy is a
duplicate: the recipient counts as delivered and nothing is written. A claim held by OUR queue id is our
own earlier attempt (it crashed after claiming): it goes on and the queue-id logic finishes the delivery.
So the claim never loses a message: whoever holds it is the one copy that gets stored, retried until done.

Caveat (as with Cyrus): two genuinely different messages with the same Message-ID to one mailbox within
the TTL store only the first. Message-IDs are meant to be unique (RFC 5322 §3.6.4); a message without one
is never suppressed.
"""

import hashlib
import re

from redis.asyncio import Redis

CLAIM = "yubin:delivery:msgid:{}:{}"

# KEYS[1] the claim, ARGV[1] the queue id: delete the claim only if it is still ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

_MSG_ID = re.compile(r"<([^<>]*)>")


def normalized_message_id(value: str | None) -> str | None:
    """The Message-ID as compared: what is inside its angle brackets, without white space (so comments and
    folding do not matter); the whole value if it has no brackets; None when there is nothing."""
    if not value:
        return None
    match = _MSG_ID.search(value)
    text = match.group(1) if match else value
    text = "".join(text.split())
    return text or None


def claim_key(message_id: str, recipient: str) -> str:
    # Hashed: a Message-ID is up to 998 characters of anything; the key stays short and printable.
    digest = hashlib.sha256(message_id.encode("utf-8", "surrogateescape")).hexdigest()
    return CLAIM.format(digest, recipient)


class DuplicateClaims:
    """The claims in Redis: who stores the one copy of a Message-ID for a recipient."""

    def __init__(self, redis: Redis, ttl_s: int) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self._release = redis.register_script(_RELEASE)

    async def holder(self, key: str) -> str | None:
        """The queue id holding the claim, if any."""
        value = await self.redis.get(key)
        return value.decode() if value is not None else None

    async def claim(self, key: str, queue_id: str) -> str:
        """Claim `key` for `queue_id` unless claimed already; returns the queue id that holds it now."""
        # SET NX GET (Redis 7.0+): one atomic step, so two copies delivered at the same moment by two
        # replicas cannot both win.
        previous = await self.redis.set(key, queue_id, ex=self.ttl_s, nx=True, get=True)
        return previous.decode() if previous is not None else queue_id

    async def release(self, key: str, queue_id: str) -> None:
        """Give up our claim (we could not store the message yet), so another copy may be stored."""
        await self._release(keys=[key], args=[queue_id])
