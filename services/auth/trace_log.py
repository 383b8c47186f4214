"""Reading a site's trace stream for the admin API: filtered pages, and new events as they come.

The stream (`shared.streams.TRACE`) is capped and has no index: a filtered read scans it in id order. A
page therefore stops after `limit` matches *or* after scanning `SCAN_MAX` entries, whichever comes first,
and says where to go on (`next`); only the end of the stream gives `next = None`. Before an entry is
parsed, its raw bytes are searched for the wanted id or address, so a scan skips most entries cheaply.

Filters combine (all must match):
- `queue_id`: the event's queue id, or the queue id it links to (a bounce's `notice_queue_id`, a DSN's
  `original_queue_id`, see `shared.bounce`);
- `message_id`: the same for Message-IDs, compared without the angle brackets;
- `address`: any address in the event's detail (sender, recipients, the POP3 user, ...), ignoring case.
"""

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from redis.asyncio import Redis

from shared.models import TraceEvent
from shared.streams import TRACE

STREAM_ID = re.compile(r"\d{1,20}(-\d{1,20})?")
"""A stream id as a client may give it (`since`, `Last-Event-ID`)."""

SCAN_MAX = 20_000
"""Entries one page request looks at, at most: bounds the time a request takes on a full stream."""

_CHUNK = 500
_LINK_QUEUE_IDS = ("original_queue_id", "notice_queue_id")
_LINK_MESSAGE_IDS = ("original_message_id", "notice_message_id")
# Values whose JSON form is the value itself: only those can be searched for in the raw entry.
_PLAIN = re.compile(r"[A-Za-z0-9@.<>_+=%!#$&'*/?^`{|}~-]+")
_MAX_DEPTH = 4


def _bare(message_id: str) -> str:
    return message_id.strip().strip("<>")


@dataclass(frozen=True)
class TraceFilter:
    queue_id: str | None = None
    message_id: str | None = None
    address: str | None = None

    def _needles(self) -> list[bytes]:
        """Byte strings every matching entry contains (lower-case for the address)."""
        needles = []
        for value in (self.queue_id, self.message_id and _bare(self.message_id)):
            if value and _PLAIN.fullmatch(value):
                needles.append(value.encode())
        return needles

    def might_match(self, raw: bytes) -> bool:
        if not all(needle in raw for needle in self._needles()):
            return False
        address = self.address and self.address.strip().strip("<>").lower()
        return not (address and _PLAIN.fullmatch(address) and address.encode() not in raw.lower())

    def matches(self, event: TraceEvent) -> bool:
        if self.queue_id is not None:
            linked = [event.detail.get(key) for key in _LINK_QUEUE_IDS]
            if self.queue_id != event.queue_id and self.queue_id not in linked:
                return False
        if self.message_id is not None:
            wanted = _bare(self.message_id)
            found = [event.message_id, *(event.detail.get(key) for key in _LINK_MESSAGE_IDS)]
            if wanted not in {_bare(v) for v in found if isinstance(v, str)}:
                return False
        if self.address is not None:
            wanted = self.address.strip().strip("<>").lower()
            if wanted not in _addresses(event.detail, 0):
                return False
        return True


def _addresses(value: Any, depth: int) -> set[str]:
    """Every string in a detail (values, list items, dict keys), lower-case without angle brackets."""
    if depth > _MAX_DEPTH:
        return set()
    if isinstance(value, str):
        return {value.strip().strip("<>").lower()}
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            found |= _addresses(key, depth + 1) | _addresses(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            found |= _addresses(item, depth + 1)
    return found


@dataclass(frozen=True)
class TraceRecord:
    id: str
    event: TraceEvent

    def as_json(self) -> str:
        """One line of JSON: the event's fields and its stream id (what SSE `data:` carries)."""
        # Spliced rather than dumped, loaded and dumped again: a live stream writes every event of the
        # site, and this was most of the admin API's CPU while the console watched a burst.
        return '{"id":' + json.dumps(self.id) + "," + self.event.model_dump_json()[1:]


def _decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def parse_entry(entry_id: bytes | str, fields: dict[bytes, bytes], wanted: TraceFilter) -> TraceRecord | None:
    """The entry as a record if it is a trace event that `wanted` matches; None otherwise."""
    raw = fields.get(b"data", b"")
    if not wanted.might_match(raw):
        return None
    try:
        event = TraceEvent.model_validate_json(raw)
    except ValidationError:
        return None  # not ours to show: an entry some other writer got wrong
    return TraceRecord(_decode(entry_id), event) if wanted.matches(event) else None


async def read_page(
    redis: Redis, wanted: TraceFilter, since: str | None, limit: int, scan_max: int = SCAN_MAX
) -> tuple[list[TraceRecord], str | None]:
    """Up to `limit` matching events after `since` (exclusive), oldest first, and where to go on."""
    cursor = f"({since}" if since else "-"
    found: list[TraceRecord] = []
    scanned = 0
    while scanned < scan_max:
        entries = await redis.xrange(TRACE, min=cursor, max="+", count=min(_CHUNK, scan_max - scanned))
        if not entries:
            return found, None
        for entry_id, fields in entries:
            scanned += 1
            record = parse_entry(entry_id, fields, wanted)
            if record is not None:
                found.append(record)
                if len(found) == limit:
                    return found, record.id
        cursor = f"({_decode(entries[-1][0])}"
    return found, cursor[1:]


async def read_last(
    redis: Redis, wanted: TraceFilter, since: str | None, last: int, scan_max: int = SCAN_MAX
) -> list[TraceRecord]:
    """The newest `last` matching events after `since` (exclusive), oldest first: read backwards from
    the end, within the same scan budget as a page."""
    cursor = "+"
    floor = f"({since}" if since else "-"
    found: list[TraceRecord] = []
    scanned = 0
    while scanned < scan_max and len(found) < last:
        entries = await redis.xrevrange(TRACE, max=cursor, min=floor, count=min(_CHUNK, scan_max - scanned))
        if not entries:
            break
        for entry_id, fields in entries:
            scanned += 1
            record = parse_entry(entry_id, fields, wanted)
            if record is not None:
                found.append(record)
                if len(found) == last:
                    break
        cursor = f"({_decode(entries[-1][0])}"
    found.reverse()
    return found


async def last_id(redis: Redis) -> str:
    """The id of the newest event (`0-0` if there is none): where a stream without `since` starts."""
    newest = await redis.xrevrange(TRACE, count=1)
    return _decode(newest[0][0]) if newest else "0-0"


async def read_after(
    redis: Redis, wanted: TraceFilter, after: str, block_ms: int, count: int = 500
) -> tuple[list[TraceRecord], str]:
    """Events after `after`, waiting up to `block_ms` for some; returns them and the new position."""
    reply = await redis.xread({TRACE: after}, count=count, block=block_ms)
    records: list[TraceRecord] = []
    for _stream, entries in reply or []:
        for entry_id, fields in entries:
            after = _decode(entry_id)
            record = parse_entry(entry_id, fields, wanted)
            if record is not None:
                records.append(record)
    return records, after
