"""The relay's retry queue: `shared.retry_queue` on the OUTBOUND stream, in `yubin:relay:retry`."""

from redis.asyncio import Redis

from shared.retry_queue import RELAY_RETRY_KEY, RetryQueue
from shared.streams import OUTBOUND

RETRY_KEY = RELAY_RETRY_KEY


def relay_retry_queue(redis: Redis) -> RetryQueue:
    return RetryQueue(redis, OUTBOUND, RETRY_KEY)
