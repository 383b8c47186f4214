"""How many bytes each mailbox holds (the S= sizes in `new/` and `cur/`), kept in Redis for the quota.

Counting a Maildir means listing it, and that grows with the mailbox: 50,000 names for every delivery. So
the count is kept in one Redis hash (`USAGE`, field = address) and changed as files come and go:
- delivery adds a stored file's size in the same MULTI as its stream acknowledgement (`stage_add`), so a
  crash before that redelivers the entry, which finds the file and adds it then: counted once;
- POP3 subtracts the sizes of the files it removed in its UPDATE state (`add` with a negative delta).
Both only change a count that exists. A mailbox without one is counted from a listing by the next delivery
that needs it (a user with a quota) and stored with HSETNX: that listing is the reconciliation, once per
mailbox, not per message. The delivery service forgets every count when it starts (`forget_all`), so
whatever drifted (a crash between POP3's unlink and its update, files removed by hand) is counted afresh.

The window, as with any quota that is not a lock (Dovecot's has the same): a file renamed into `new/` while
its mailbox is being listed for a fresh count, and before its size is added, is missed by that count until
the next restart; the quota can be overshot by the messages in flight at that moment.
"""

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

USAGE = "yubin:mailbox:usage"
"""Hash: address → bytes its mailbox holds in new/ and cur/."""

# KEYS[1] the hash, ARGV[1] the address, ARGV[2] the change: only a count that exists is changed (adding to
# a missing one would make a partial sum look like a full count).
_ADD_IF_COUNTED = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
end
return false
"""


def stage_add(pipe: Pipeline, address: str, delta: int) -> None:
    """Stage changing `address`'s count by `delta` octets (if it is counted) in the caller's transaction."""
    pipe.eval(_ADD_IF_COUNTED, 1, USAGE, address, delta)


class MailboxUsage:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def get(self, address: str) -> int | None:
        """The bytes `address`'s mailbox holds, None when not counted yet."""
        value = await self.redis.hget(USAGE, address)
        return int(value) if value is not None else None

    async def remember(self, address: str, counted: int) -> int:
        """Store a count made from a listing, unless another delivery stored one meanwhile (whose count,
        changed since, wins); returns the count now stored."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(USAGE, address, counted)
            pipe.hget(USAGE, address)
            _, value = await pipe.execute()
        return int(value)

    async def add(self, address: str, delta: int) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            stage_add(pipe, address, delta)
            await pipe.execute()

    async def forget_all(self) -> None:
        await self.redis.delete(USAGE)
