"""Message bodies, stored once as raw bytes and referenced from envelopes by id.

A body has a set of *holders*: one per piece of work that still needs it (for example
`local:<queue id>` and `outbound:<queue id>`). Releasing the last holder deletes the body. Holders are a
set, not a counter, so releasing twice (a redelivered stream entry) is harmless.

Redis is the only backend today; `BodyStore` is the interface a filesystem or S3-compatible store would
implement. The Redis store can also stage its writes into a caller's MULTI, which is how a body and the
envelopes that reference it become durable together (`shared.enqueue`).
"""

import secrets
from collections.abc import Iterable
from typing import Protocol

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

BODY_KEY = "yubin:body:{}"
HOLDERS_KEY = "yubin:body:{}:holders"

# SREM the holder; when none is left, delete the body. One script, so two releasing consumers cannot
# both see "one holder left" and leave the body behind.
_RELEASE = """
redis.call('SREM', KEYS[2], ARGV[1])
if redis.call('SCARD', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 1
end
return 0
"""


def new_body_id() -> str:
    return secrets.token_hex(12)


def holder(stream: str, queue_id: str) -> str:
    """The holder name for the work one envelope on one stream does."""
    return f"{stream}:{queue_id}"


class BodyStore(Protocol):
    async def get(self, body_id: str) -> bytes | None: ...

    async def size(self, body_id: str) -> int: ...

    async def hold(self, body_id: str, holder: str) -> None: ...

    async def release(self, body_id: str, holder: str) -> bool:
        """Drop one holder; True if that deleted the body."""
        ...


class RedisBodyStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._release = redis.register_script(_RELEASE)

    def stage_put(self, pipe: Pipeline, body_id: str, data: bytes, holders: Iterable[str]) -> None:
        pipe.set(BODY_KEY.format(body_id), data)
        names = list(holders)
        if names:
            pipe.sadd(HOLDERS_KEY.format(body_id), *names)

    def stage_hold(self, pipe: Pipeline, body_id: str, holder: str) -> None:
        pipe.sadd(HOLDERS_KEY.format(body_id), holder)

    def stage_release(self, pipe: Pipeline, body_id: str, holder: str) -> None:
        # Plain EVAL: redis-py's Script wrapper is a coroutine on asyncio clients and cannot be staged.
        pipe.eval(_RELEASE, 2, BODY_KEY.format(body_id), HOLDERS_KEY.format(body_id), holder)

    async def get(self, body_id: str) -> bytes | None:
        return await self.redis.get(BODY_KEY.format(body_id))

    async def size(self, body_id: str) -> int:
        return int(await self.redis.strlen(BODY_KEY.format(body_id)))

    async def hold(self, body_id: str, holder: str) -> None:
        await self.redis.sadd(HOLDERS_KEY.format(body_id), holder)

    async def release(self, body_id: str, holder: str) -> bool:
        deleted = await self._release(
            keys=[BODY_KEY.format(body_id), HOLDERS_KEY.format(body_id)], args=[holder]
        )
        return bool(deleted)

    async def holders(self, body_id: str) -> set[str]:
        return {h.decode() for h in await self.redis.smembers(HOLDERS_KEY.format(body_id))}
