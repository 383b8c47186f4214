"""The bus: Redis streams with consumer groups.

Contract (at-least-once):
- `publish` returns only after Redis has answered, and Redis runs with `appendfsync always`, so a published
  envelope is on disk.
- A consumer reads through a consumer group. An entry stays in the group's pending list until acknowledged.
  `run_consumer` acknowledges after the handler returns; a handler that must make its own writes and the
  acknowledgement atomic stages both in one MULTI with `Consumer.stage_ack`.
- If a consumer dies (kill -9) its pending entries are reclaimed with XAUTOCLAIM by another consumer once
  they have been idle for `bus_claim_idle_ms`. A live consumer heartbeats its in-flight entries (XCLAIM
  JUSTID), so a slow delivery is never taken away from a consumer that is still working on it. The
  XAUTOCLAIM cursor is followed from call to call, so an orphan behind many live entries is reached too.
- A handler failure caused by an outage (`shared.outages`: Redis, the auth service, DNS, sockets, the
  disk) is retried by the same consumer with backoff for as long as the outage lasts, and does not count
  as a delivery. Any other failure leaves the entry pending for a retry after `bus_claim_idle_ms`; an
  entry delivered more than `bus_max_deliveries` times is a poison entry: it goes to the dead-letter
  stream with the reason (and the last error) and is acknowledged.
- The acknowledgement deletes the entry once every consumer group is done with it, and consumers trim
  what is left now and then (`shared.stream_cleanup`): a queue stream holds only the work not yet done.

So every handler may see the same entry more than once and must be idempotent: derive names of what it
writes from the entry's content (queue id, recipient), check before doing external work it cannot undo,
and make its final write plus the acknowledgement one transaction.
"""

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError, ResponseError

from shared.config import BusSettings
from shared.outages import describe, is_outage
from shared.stream_cleanup import FAILURES_KEY, ack_and_delete, stage_ack_and_delete, trim
from shared.streams import DEAD_LETTER

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Entry:
    """One stream entry as a consumer sees it."""

    stream: str
    id: str
    kind: str
    data: bytes
    deliveries: int = 1

    def parse(self, model: type[M]) -> M:
        return model.model_validate_json(self.data)


def _fields(model: BaseModel) -> dict[str, str]:
    return {"type": type(model).__name__, "data": model.model_dump_json()}


def stage_publish(pipe: Pipeline, stream: str, model: BaseModel, *, maxlen: int | None = None) -> None:
    """Add an XADD to a pipeline/transaction, so it lands together with the caller's other writes."""
    pipe.xadd(stream, _fields(model), maxlen=maxlen, approximate=maxlen is not None)


async def publish(redis: Redis, stream: str, model: BaseModel, *, maxlen: int | None = None) -> str:
    """Append one model to a stream; returns the entry id once Redis (and so the disk) has it."""
    entry_id = await redis.xadd(stream, _fields(model), maxlen=maxlen, approximate=maxlen is not None)
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


def default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _entry(stream: str, entry_id: bytes | str, fields: dict[bytes, bytes], deliveries: int = 1) -> Entry:
    return Entry(
        stream=stream,
        id=entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
        kind=fields.get(b"type", b"").decode(),
        data=fields.get(b"data", b""),
        deliveries=deliveries,
    )


class Consumer:
    """One member of a consumer group on one stream."""

    def __init__(
        self,
        redis: Redis,
        stream: str,
        group: str,
        settings: BusSettings,
        *,
        name: str | None = None,
        dead_letter_stream: str = DEAD_LETTER,
    ) -> None:
        self.redis = redis
        self.stream = stream
        self.group = group
        self.name = name or default_consumer_name()
        self.settings = settings
        self.dead_letter_stream = dead_letter_stream
        self._staged_acks: set[str] = set()
        self._claim_cursor = "0-0"

    async def ensure_group(self) -> None:
        """Create the group (and the stream) if missing; safe to call from every replica at every start."""
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read_new(self, count: int, block_ms: int | None = None) -> list[Entry]:
        """Entries never delivered to anyone in the group, waiting up to `block_ms` for some to arrive."""
        block = self.settings.bus_block_ms if block_ms is None else block_ms
        reply = await self.redis.xreadgroup(
            self.group, self.name, {self.stream: ">"}, count=count, block=block
        )
        entries: list[Entry] = []
        for _stream, items in reply or []:
            for entry_id, fields in items:
                if fields:
                    entries.append(_entry(self.stream, entry_id, fields))
        return entries

    async def reclaim(self, count: int) -> list[Entry]:
        """Take over entries left pending by a dead consumer; dead-letter those delivered too often.

        One call scans a slice of the pending list (XAUTOCLAIM looks at up to 10 x `count` entries); the
        next call goes on where this one stopped, wrapping round at the end, so entries orphaned behind
        many entries that live consumers still work on are reached too."""
        reply = await self.redis.xautoclaim(
            self.stream,
            self.group,
            self.name,
            min_idle_time=self.settings.bus_claim_idle_ms,
            start_id=self._claim_cursor,
            count=count,
        )
        cursor = reply[0]
        self._claim_cursor = cursor.decode() if isinstance(cursor, bytes) else str(cursor)
        claimed = reply[1]
        entries: list[Entry] = []
        for entry_id, fields in claimed:
            if not fields:  # deleted from the stream while pending: nothing to do but forget it
                await self.redis.xack(self.stream, self.group, entry_id)
                continue
            pending = await self.redis.xpending_range(
                self.stream, self.group, min=entry_id, max=entry_id, count=1, consumername=self.name
            )
            deliveries = int(pending[0]["times_delivered"]) if pending else 1
            entry = _entry(self.stream, entry_id, fields, deliveries)
            if deliveries > self.settings.bus_max_deliveries:
                last_error = await self.redis.hget(FAILURES_KEY.format(self.stream), entry.id)
                reason = f"delivered {deliveries} times without being acknowledged"
                if last_error:
                    reason += f"; last error: {last_error.decode(errors='replace')}"
                await self.dead_letter(entry, reason)
                self._staged_acks.discard(entry.id)  # acknowledged right there, not by run_consumer
                continue
            entries.append(entry)
        return entries

    async def still_pending(self, entry: Entry) -> bool:
        """Whether the group still waits for `entry`; False once anyone acknowledged it. When Redis cannot
        say, True: the handler's next attempt meets the same outage and waits again."""
        try:
            found = await self.redis.xpending_range(
                self.stream, self.group, min=entry.id, max=entry.id, count=1
            )
        except (RedisError, OSError):
            return True
        return bool(found)

    def stage_ack(self, pipe: Pipeline, entry: Entry) -> None:
        """Acknowledge (and delete, see `shared.stream_cleanup`) in the caller's transaction."""
        stage_ack_and_delete(pipe, self.stream, self.group, entry.id)
        # Remembered so run_consumer does not send a second XACK once the handler returns: if the
        # transaction failed, the handler raised and run_consumer does not ack anyway.
        self._staged_acks.add(entry.id)

    def ack_pending(self, entry: Entry) -> bool:
        """True unless a handler already staged this entry's acknowledgement in its own transaction."""
        if entry.id in self._staged_acks:
            self._staged_acks.discard(entry.id)
            return False
        return True

    async def ack(self, entry: Entry) -> None:
        await ack_and_delete(self.redis, self.stream, self.group, entry.id)

    async def trim(self) -> int:
        """Delete the entries every consumer group is done with (see `shared.stream_cleanup`)."""
        return await trim(self.redis, self.stream)

    async def record_failure(self, entry: Entry, error: str) -> None:
        """Remember why the handler failed, for the dead-letter reason should it keep failing."""
        await self.redis.hset(FAILURES_KEY.format(self.stream), entry.id, error[:1000])

    async def forgive_delivery(self, entry: Entry) -> None:
        """Take back the delivery count of an attempt that an outage spoiled (XCLAIM RETRYCOUNT)."""
        if entry.deliveries > 1:
            await self.redis.xclaim(
                self.stream,
                self.group,
                self.name,
                min_idle_time=0,
                message_ids=[entry.id],
                retrycount=entry.deliveries - 1,
                justid=True,
            )

    async def dead_letter(self, entry: Entry, reason: str) -> None:
        """Move an entry to the dead-letter stream and acknowledge it, atomically."""
        log.error(
            "dead-lettering entry",
            extra={
                "stream": self.stream,
                "entry_id": entry.id,
                "reason": reason,
                "deliveries": entry.deliveries,
            },
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(
                self.dead_letter_stream,
                {
                    "stream": self.stream,
                    "group": self.group,
                    "entry_id": entry.id,
                    "type": entry.kind,
                    "data": entry.data,
                    "reason": reason,
                    "deliveries": str(entry.deliveries),
                    "failed_at": str(time.time()),
                },
            )
            self.stage_ack(pipe, entry)
            await pipe.execute()

    async def parse_or_dead_letter(self, entry: Entry, model: type[M]) -> M | None:
        """The entry's payload as `model`; an entry that is not one can never succeed: dead-letter it."""
        try:
            return entry.parse(model)
        except ValidationError as exc:
            await self.dead_letter(entry, f"not a valid {model.__name__}: {exc}")
            return None

    async def heartbeat(self, entry_ids: list[str]) -> None:
        """Reset the idle time of entries we are still working on (JUSTID: no delivery-count increment)."""
        if entry_ids:
            await self.redis.xclaim(
                self.stream, self.group, self.name, min_idle_time=0, message_ids=entry_ids, justid=True
            )


Handler = Callable[[Entry], Awaitable[None]]

OUTAGE_FIRST_BACKOFF_S = 0.2
TRIM_EVERY_S = 60.0


async def run_consumer(consumer: Consumer, handler: Handler, stop: asyncio.Event) -> None:
    """Feed entries to `handler`, up to `concurrency` at once, until `stop` is set; then drain and return.

    Entries left pending by dead consumers are reclaimed first. A handler that fails because of an outage
    (`shared.outages`) is retried here with backoff until it succeeds or we stop. A handler that raises
    anything else leaves its entry pending: it is retried after `bus_claim_idle_ms`, and dead-lettered
    after `bus_max_deliveries`. Redis outages are waited out, not fatal.
    """
    settings = consumer.settings
    in_flight: dict[str, asyncio.Task[None]] = {}

    async def attempt(entry: Entry) -> None:
        try:
            await handler(entry)
            if consumer.ack_pending(entry):
                await consumer.ack(entry)
        except BaseException:
            consumer.ack_pending(entry)  # forget a staged ack whose transaction did not run
            raise

    async def work(entry: Entry) -> None:
        backoff = OUTAGE_FIRST_BACKOFF_S
        outages = 0
        while True:
            if outages and not await consumer.still_pending(entry):
                # The failed attempt's final transaction (with its ack) committed and only the reply was
                # lost: the work is done. Running the handler again would find its inputs released.
                log.info(
                    "entry already done by an earlier attempt",
                    extra={"stream": consumer.stream, "entry_id": entry.id},
                )
                return
            try:
                await attempt(entry)
                if outages:
                    log.info(
                        "entry done after an outage",
                        extra={"stream": consumer.stream, "entry_id": entry.id, "outage_retries": outages},
                    )
                return
            except Exception as exc:
                fields = {"stream": consumer.stream, "entry_id": entry.id, "deliveries": entry.deliveries}
                if not is_outage(exc):
                    log.exception("handler failed; entry stays pending for a retry", extra=fields)
                    with contextlib.suppress(RedisError, OSError):
                        await consumer.record_failure(entry, describe(exc))
                    return
                outages += 1
                log.warning(
                    "dependency unavailable; retrying the entry",
                    extra={
                        **fields,
                        "error": describe(exc),
                        "retry_in_s": backoff,
                        "outage_retries": outages,
                    },
                )
                if outages == 1:
                    with contextlib.suppress(RedisError, OSError):
                        await consumer.forgive_delivery(entry)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            if stop.is_set():
                return  # stays pending; whoever reclaims it retries it
            backoff = min(backoff * 2, settings.bus_outage_backoff_max_s)

    async def heartbeats() -> None:
        interval = settings.bus_claim_idle_ms / 3000
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(RedisError):
                await consumer.heartbeat(list(in_flight))

    beat = asyncio.create_task(heartbeats())
    reclaim_every = settings.bus_claim_idle_ms / 2000
    next_reclaim = 0.0
    next_trim = 0.0
    backoff = 0.1
    stop_wait = asyncio.create_task(stop.wait())
    try:
        while not stop.is_set():
            free = settings.concurrency - len(in_flight)
            if free <= 0:
                await asyncio.wait([stop_wait, *in_flight.values()], return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                if time.monotonic() >= next_reclaim:
                    await consumer.ensure_group()  # the stream may be new (or Redis lost it)
                    entries = await consumer.reclaim(free)
                    next_reclaim = time.monotonic() + reclaim_every
                    if time.monotonic() >= next_trim:
                        trimmed = await consumer.trim()
                        if trimmed:
                            log.info("trimmed", extra={"stream": consumer.stream, "entries": trimmed})
                        next_trim = time.monotonic() + TRIM_EVERY_S
                else:
                    entries = []
                if not entries:
                    block_ms = min(settings.bus_block_ms, int(reclaim_every * 1000) + 1)
                    read = asyncio.create_task(consumer.read_new(free, block_ms))
                    await asyncio.wait([read, stop_wait], return_when=asyncio.FIRST_COMPLETED)
                    if not read.done():
                        # Stopping: whatever this read had claimed stays pending and is reclaimed later.
                        read.cancel()
                        with contextlib.suppress(asyncio.CancelledError, RedisError):
                            await read
                        break
                    entries = read.result()
                backoff = 0.1
            except (RedisError, OSError) as exc:
                log.warning("bus read failed, retrying", extra={"stream": consumer.stream, "error": str(exc)})
                next_reclaim = 0.0
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            for entry in entries:
                if entry.id in in_flight:
                    continue
                task = asyncio.create_task(work(entry))
                in_flight[entry.id] = task
                task.add_done_callback(lambda _t, key=entry.id: in_flight.pop(key, None))
    finally:
        if in_flight:
            log.info("draining in-flight work", extra={"stream": consumer.stream, "count": len(in_flight)})
            await asyncio.gather(*in_flight.values(), return_exceptions=True)
        beat.cancel()
        stop_wait.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
