"""POP3's part of a message's journey: trace events when a message is listed, retrieved and deleted.

Events (service `pop3`, in the site's trace stream like every other service's; detail: `user`, `client`,
`uid`, `octets`):
- `listed`: once per session, at the first full LIST or UIDL, for each message still in `new/` (never
  retrieved): the moment the user's client first sees it. Messages seen in earlier sessions are not
  listed again, so a client that keeps its mail on the server costs nothing per poll. At most
  `LISTED_MAX` per session.
- `retrieved`: RETR or TOP sent the message (`command` says which; TOP with its `lines`).
- `deleted`: UPDATE removed the message (QUIT after DELE).

**Which message is it?** A Maildir file does not name its queue id, but delivery names the file after it:
the unique part is a digest of the queue id and the recipient (`shared.maildir.delivery_unique`). The
Received field our MX or submission service put on top says `id <queue id>`; a candidate from the header
counts only if its digest with the mailbox address gives the file's unique part, so a forged Received
field cannot tie the retrieval to another message. Only the header counts (at most `HEADER_MAX` octets,
scanned for the two fields rather than parsed), and only for the messages an event is about; a session
looks at each at most once, and RETR and TOP take it from the octets they send anyway. The Message-ID
comes from the same header. A DSN our site wrote itself has no Received field: its queue id stays
unknown ("") and its Message-ID finds it.

Publishing is best effort: events are queued and written together, every session's at once, at most
`LINGER_S` after they happen (`TraceWriter`), so a RETR costs no round trip to Redis of its own. The
deletions are written, with everything queued before them, before QUIT's +OK. A trace that cannot be
written is logged and the session goes on; a process killed outright loses at most its last `LINGER_S`.
"""

import asyncio
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.bus import stage_publish
from shared.maildir import delivery_unique, unique_of
from shared.models import TraceEvent
from shared.streams import TRACE, TRACE_MAXLEN

log = logging.getLogger(__name__)

HEADER_MAX = 16 * 1024
LISTED_MAX = 100
LINGER_S = 0.05
"""How long an event waits for others to share its write to Redis."""
BATCH_MAX = 256
"""Events that are written at once without waiting for the linger."""
QUEUED_MAX = 10_000
"""Events waiting while Redis is slow to answer; more are dropped (and counted in the log)."""
# The header: the lines from the top that are fields or their continuations, as the email package's parser
# sees it (`email.feedparser.headerRE`); it ends at the empty line, or at the first line that is neither.
_HEADER = re.compile(rb"(?:(?:[\x21-\x39\x3b-\x7e]*:|[ \t]|From )[^\n]*(?:\n|$))*")
# A field of interest with its continuation lines (RFC 5322 §2.2.3 folding): linear, as `.` stops at a line
# break and every repetition of the group starts with one.
_FIELD = re.compile(rb"^(received|message-id):(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)
_RECEIVED_ID = re.compile(r"\bid\s+([0-9A-Za-z]{1,64})\s*;")
_MESSAGE_ID_MAX = 998


@dataclass(frozen=True)
class MessageIds:
    queue_id: str | None = None
    message_id: str | None = None


def ids_from_head(head: bytes, filename: str, address: str) -> MessageIds:
    """The queue id and Message-ID in the first octets of a delivered file (its header, or its start).

    A scan for the two fields, not a parse of the whole header: it runs for every RETR, on the event loop,
    on bytes the RETR has read anyway. Only the first `HEADER_MAX` octets, up to the first empty line, count.
    """
    header = _HEADER.match(head, 0, HEADER_MAX)
    head = header.group() if header else b""
    unique = unique_of(filename)
    queue_id = message_id = None
    message_id_seen = False  # the first Message-ID field counts, even an empty one
    for match in _FIELD.finditer(head):
        value = " ".join(match.group(2).decode("utf-8", "replace").split())
        if match.group(1).lower() == b"message-id":
            if not message_id_seen:
                message_id_seen = True
                message_id = value[:_MESSAGE_ID_MAX] or None
        elif queue_id is None:
            for candidate in _RECEIVED_ID.findall(value):
                if delivery_unique(candidate, address) == unique:
                    queue_id = candidate
                    break
    return MessageIds(queue_id, message_id)


def read_ids(path: Path, address: str) -> MessageIds:
    """`ids_from_head` of a file that is not open yet (blocking: one small read)."""
    try:
        with path.open("rb") as file:
            head = file.read(HEADER_MAX)
    except OSError:
        return MessageIds()
    return ids_from_head(head, path.name, address)


def event(ids: MessageIds, name: str, detail: dict[str, Any]) -> TraceEvent:
    return TraceEvent(
        queue_id=ids.queue_id or "", message_id=ids.message_id, service="pop3", event=name, detail=detail
    )


class TraceWriter:
    """Writes POP3's events to the site's trace stream, many in one round trip.

    `add` only queues: events wait at most `LINGER_S` (or until `BATCH_MAX` are queued) and then go out
    together, one pipeline for every session's events, so a RETR costs no round trip of its own. `flush`
    writes everything queued so far and returns once Redis has it; writes happen one after the other, so
    the stream keeps the order events were added in (a message's `retrieved` before its `deleted`).
    """

    def __init__(self, redis: Redis, linger_s: float = LINGER_S, batch_max: int = BATCH_MAX) -> None:
        self.redis = redis
        self.linger_s = linger_s
        self.batch_max = batch_max
        self._queued: list[TraceEvent] = []
        self._timer: asyncio.TimerHandle | None = None
        self._writing = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._full = False  # a flush for a full batch is on its way
        self._dropped = 0

    def add(self, events: list[TraceEvent]) -> None:
        if not events:
            return
        room = QUEUED_MAX - len(self._queued)
        if len(events) > room:
            self._dropped += len(events) - max(room, 0)
            events = events[: max(room, 0)]
        self._queued.extend(events)
        if len(self._queued) >= self.batch_max:
            if not self._full:
                self._full = True
                self._flush_soon()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.linger_s, self._flush_soon)

    def _flush_soon(self) -> None:
        task = asyncio.get_running_loop().create_task(self.flush())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def flush(self) -> None:
        """Write every event added so far; best effort (a failure is logged, the events are dropped)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        async with self._writing:
            events, self._queued, self._full = self._queued, [], False
            if self._dropped:
                log.warning("trace events dropped: redis too slow", extra={"events": self._dropped})
                self._dropped = 0
            if not events:
                return
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for item in events:
                        stage_publish(pipe, TRACE, item, maxlen=TRACE_MAXLEN)
                    await pipe.execute()
            except (RedisError, OSError) as exc:
                log.warning("could not write trace events", extra={"error": str(exc), "events": len(events)})

    async def aclose(self) -> None:
        """At shutdown: the events still queued are written."""
        await self.flush()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)
