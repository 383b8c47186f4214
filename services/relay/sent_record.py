"""Recipients a remote server has already accepted, per queue id, so a redelivered entry does not send again.

The outcome of an attempt is written in one transaction with the stream acknowledgement (`handler.finish`),
after every domain of the message is done. A relay killed between a remote's 250 and that transaction
leaves the entry pending, and the replica that reclaims it would send the message again. So the moment a
remote answers 250 to DATA (before QUIT, before any other domain is finished) the accepted recipients go
into the hash `yubin:relay:sent:<queue id>` (recipient → its status); an attempt skips the recipients
found there and reports them delivered; `finish` deletes the hash in its transaction.

What is left: a crash between the remote's 250 and this one Redis write (a round trip), and the RFC 1047
case (the 250 never reaches us). For those the receiving side suppresses the copy by Message-ID.

When that 250 covers every recipient left and no other domain is in flight (the usual message: one
domain), the record is skipped: the outcome transaction follows at once (the QUIT or the return to the
connection cache does not wait for the network), so the window is the same one Redis round trip.
"""

import logging

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from shared.models import RecipientStatus

log = logging.getLogger(__name__)

SENT = "yubin:relay:sent:{}"


class SentRecord:
    def __init__(self, redis: Redis, ttl_s: int) -> None:
        self.redis = redis
        self.ttl_s = ttl_s

    async def recorded(self, queue_id: str) -> dict[str, RecipientStatus]:
        """The recipients of `queue_id` an earlier attempt already handed over, with their statuses."""
        return self.parse(await self.redis.hgetall(SENT.format(queue_id)))

    def stage_recorded(self, pipe: Pipeline, queue_id: str) -> None:
        """`recorded` as part of the caller's pipeline; `parse` its reply."""
        pipe.hgetall(SENT.format(queue_id))

    @staticmethod
    def parse(fields: dict[bytes, bytes]) -> dict[str, RecipientStatus]:
        return {
            recipient.decode(): RecipientStatus.model_validate_json(status)
            for recipient, status in fields.items()
        }

    async def record(self, queue_id: str, statuses: list[RecipientStatus]) -> None:
        """Remember that these recipients were accepted. Never raises: without Redis the entry cannot be
        finished anyway, and it is no worse than before (a crash now sends once more)."""
        if not statuses:
            return
        key = SENT.format(queue_id)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping={s.recipient: s.model_dump_json() for s in statuses})
                pipe.expire(key, self.ttl_s)
                await pipe.execute()
        except RedisError as exc:
            log.warning(
                "could not record the accepted recipients; a crash before the outcome is written would "
                "send to them again",
                extra={"recipients": [s.recipient for s in statuses], "error": str(exc)},
            )

    def stage_forget(self, pipe: Pipeline, queue_id: str) -> None:
        """Staged with the acknowledgement: once the outcome is written the record is not needed."""
        pipe.delete(SENT.format(queue_id))
