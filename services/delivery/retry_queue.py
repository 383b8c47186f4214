"""Local delivery's retry queue: `shared.retry_queue` on the LOCAL_DELIVERY stream.

A recipient that cannot take a message yet (over quota, auth service down, disk error) is not retried by
leaving its stream entry pending: that would spin through `bus_max_deliveries` in minutes and end in the
dead-letter stream. The handler defers it into this queue instead, in the same MULTI as the acknowledgement.
"""

from redis.asyncio import Redis

from shared.retry_queue import DELIVERY_RETRY_KEY, RetryQueue
from shared.streams import LOCAL_DELIVERY

DEFERRED = DELIVERY_RETRY_KEY
"""Sorted set: member = envelope JSON, score = Unix time of the next attempt."""


def delivery_retry_queue(redis: Redis) -> RetryQueue:
    return RetryQueue(redis, LOCAL_DELIVERY, DEFERRED)
