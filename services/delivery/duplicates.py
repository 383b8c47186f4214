"""Duplicate suppression: one copy per Message-ID and mailbox, whatever queue id the copies came with.

Why: the SMTP hop can duplicate. When a sending relay dies after our MX stored the message but before it
recorded our 250 (or the 250 is lost on the way: RFC 1047), it sends the message again and our MX accepts
it under a new queue id. The queue-id idempotency of `handler` cannot see that; the Message-ID can. This
is Cyrus IMAP's `duplicatesuppression` (imapd.conf, on by default): lmtpd suppresses delivery of a message
to a mailbox when a message with the same Message-ID was already delivered to it.

What counts as "the same message": the same Message-ID, the same envelope sender and the same body as the
sender sent it. The Message-ID alone is not enough: anyone who knows or guesses a Message-ID (it is in
every reply's In-Reply-To) could send a message with it first and make the real one vanish for the TTL.
"As the sender sent it" leaves out what our own MX put on top (`Envelope.prepended`: its Received field,
which differs between two acceptances by queue id and time); everything below that is what the client sent,
and a sending MTA that retries sends the same bytes again (its own Received fields were written once, when
it accepted the message). The Return-Path delivery writes is added after this, so it plays no part.

How: before writing the file, the delivery claims `yubin:delivery:copy:<digest>:<recipient>` with SET NX,
value = its queue id, with a TTL; the digest is SHA-256 over Message-ID, sender and that body. A claim
held by ANOTHER queue id means this copy is a duplicate: the recipient counts as delivered and nothing is
written. A claim held by OUR queue id is our own earlier attempt (it crashed after claiming): it goes on and
the queue-id logic finishes the delivery. So the claim never loses a message: whoever holds it is the one
copy that gets stored, retried until done.

Caveat (narrower than Cyrus's): the same message sent twice on purpose by the same sender (same
Message-ID, same bytes) within the TTL is stored once. A message without a Message-ID is never suppressed.
"""

import hashlib
import re

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

CLAIM = "yubin:delivery:copy:{}:{}"

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


def copy_digest(message_id: str, sender: str, body: bytes, prepended: int) -> str:
    """What identifies one message across copies: SHA-256 over the (normalized) Message-ID, the envelope
    sender and the body without the `prepended` octets our own MX put on top, nor the trace fields
    (Received, Return-Path: RFC 5322 §3.6.7) that any earlier hop put there. A client that resends after a
    lost 250 sends the same message, but the sending site stamps each submission with its own Received:
    only what the author wrote identifies the message."""
    digest = hashlib.sha256()
    # NUL cannot occur in an envelope field (see Envelope), so the two fields cannot run into each other.
    digest.update(message_id.encode("utf-8", "surrogateescape") + b"\0" + sender.encode() + b"\0")
    digest.update(memoryview(body)[after_trace_fields(body, prepended) :])
    return digest.hexdigest()


_TRACE_FIELDS = (b"received:", b"return-path:")


def after_trace_fields(body: bytes, start: int) -> int:
    """The offset of the first header field at or after `start` that is not a trace field (with its
    folded continuation lines); trace fields stand at the top of the header, newest first."""
    position = start
    while body[position : position + 13].lower().startswith(_TRACE_FIELDS):
        end = body.find(b"\n", position)
        while end != -1 and body[end + 1 : end + 2] in (b" ", b"\t"):  # a folded line belongs to the field
            end = body.find(b"\n", end + 1)
        if end == -1:
            return position
        position = end + 1
    return position


def claim_key(digest: str, recipient: str) -> str:
    return CLAIM.format(digest, recipient)


class DuplicateClaims:
    """The claims in Redis: who stores the one copy of a Message-ID for a recipient."""

    def __init__(self, redis: Redis, ttl_s: int) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self._release = redis.register_script(_RELEASE)

    async def claim(self, key: str, queue_id: str) -> str:
        """Claim `key` for `queue_id` unless claimed already; returns the queue id that holds it now."""
        # SET NX GET (Redis 7.0+): one atomic step, so two copies delivered at the same moment by two
        # replicas cannot both win.
        # A transaction so that, with a replicated Redis, it returns only once a replica has the claim
        # (`shared.redis_client`): the file is written after it, and a failover that lost the claim would
        # let another copy be stored beside ours (docs/ha.md).
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(key, queue_id, ex=self.ttl_s, nx=True, get=True)
            (previous,) = await pipe.execute()
        return previous.decode() if previous is not None else queue_id

    def stage_claim(self, pipe: Pipeline, key: str, queue_id: str) -> None:
        """`claim` in the caller's pipeline: its reply is the previous holder (bytes), None if we took it."""
        pipe.set(key, queue_id, ex=self.ttl_s, nx=True, get=True)

    async def release(self, key: str, queue_id: str) -> None:
        """Give up our claim (we could not store the message yet), so another copy may be stored."""
        await self._release(keys=[key], args=[queue_id])
