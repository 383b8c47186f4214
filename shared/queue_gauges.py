"""The site's queues as Prometheus gauges, read from Redis at each scrape (one exporter per site).

Queue state lives in the site's Redis, not in any one process, so it is exported once per site, by the
auth service (it serves the site's admin API and already holds the site's Redis): counting it in every
relay or delivery replica would multiply it by the replicas. The collector reads Redis with a
synchronous client of its own, in the metrics server's thread, with a short timeout; when Redis does not
answer, the scrape still succeeds with `yubin_queue_redis_up 0` and no queue gauges.
"""

from collections.abc import Iterator
from typing import Any

import redis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from shared.metrics import NAMESPACE
from shared.streams import DEAD_LETTER, LOCAL_DELIVERY, OUTBOUND

STREAMS = {"outbound": OUTBOUND, "local": LOCAL_DELIVERY}
"""Label → stream key. An acknowledged entry is deleted (`shared.stream_cleanup`), so XLEN is the backlog."""

RETRY_SETS = {"relay": "yubin:relay:retry", "delivery": "yubin:delivery:deferred"}
"""Label → sorted set of deferred envelopes. The services own the keys (services/relay/retry.py,
services/delivery/retry_queue.py); a unit test keeps these equal, since shared/ does not import services."""

TIMEOUT_S = 2.0


def _entry_ms(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


class QueueGauges(Collector):
    def __init__(self, redis_url: str, timeout_s: float = TIMEOUT_S) -> None:
        self.redis = redis.Redis.from_url(
            redis_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )

    def describe(self) -> list:
        # Nothing to describe up front: registering must not read Redis (prometheus_client would call
        # collect() to learn the names).
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            f"{NAMESPACE}_queue_redis_up", "Whether the queue gauges could be read from Redis."
        )
        try:
            families = self._read()
        except RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self) -> list[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            f"{NAMESPACE}_queue_depth",
            "Entries in the stream not yet finished (read or not).",
            labels=["stream"],
        )
        pending = GaugeMetricFamily(
            f"{NAMESPACE}_queue_pending",
            "Entries a consumer of the group has read and not yet acknowledged.",
            labels=["stream", "group"],
        )
        oldest = GaugeMetricFamily(
            f"{NAMESPACE}_queue_oldest_age_seconds",
            "Age of the oldest entry in the stream (0 when empty).",
            labels=["stream"],
        )
        retry = GaugeMetricFamily(
            f"{NAMESPACE}_retry_queue_size",
            "Deferred envelopes waiting for their next attempt.",
            labels=["queue"],
        )
        dead = GaugeMetricFamily(
            f"{NAMESPACE}_dead_letters", "Entries in the dead-letter stream, waiting for a person."
        )
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.time()
            for key in STREAMS.values():
                pipe.xlen(key)
                pipe.xrange(key, count=1)
                pipe.xinfo_groups(key)
            for key in RETRY_SETS.values():
                pipe.zcard(key)
            pipe.xlen(DEAD_LETTER)
            replies = iter(pipe.execute(raise_on_error=False))
        seconds, micros = _raise(next(replies))
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        for label in STREAMS:
            length, first, groups = _raise(next(replies)), _raise(next(replies)), next(replies)
            depth.add_metric([label], int(length))
            oldest.add_metric([label], max(now_ms - _entry_ms(first[0][0]), 0) / 1000 if first else 0.0)
            # A stream nobody has read yet has no groups (XINFO answers "no such key"): nothing pending.
            for group in groups if isinstance(groups, list) else []:
                pending.add_metric([label, _text(group["name"])], int(group["pending"]))
        for label in RETRY_SETS:
            retry.add_metric([label], int(_raise(next(replies))))
        dead.add_metric([], int(_raise(next(replies))))
        return [depth, pending, oldest, retry, dead]


def _raise(reply: Any) -> Any:
    """A pipeline reply (with raise_on_error=False), or the error it stands for raised."""
    if isinstance(reply, Exception):
        raise reply
    return reply
