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
field cannot tie the retrieval to another message. Only the header is read (at most `HEADER_MAX` octets),
and only for the messages an event is about; a session reads each at most once. The Message-ID comes from
the same header. A DSN our site wrote itself has no Received field: its queue id stays unknown ("") and
its Message-ID finds it.

Publishing is best effort: a trace that cannot be written is logged, the session goes on.
"""

import logging
import re
from dataclasses import dataclass
from email import policy
from email.parser import BytesHeaderParser
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
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_RECEIVED_ID = re.compile(r"\bid\s+([0-9A-Za-z]{1,64})\s*;")
_MESSAGE_ID_MAX = 998


@dataclass(frozen=True)
class MessageIds:
    queue_id: str | None = None
    message_id: str | None = None


def read_ids(path: Path, address: str) -> MessageIds:
    """The queue id and Message-ID of a delivered file, from its header (blocking: small reads)."""
    try:
        with path.open("rb") as file:
            head = file.read(HEADER_MAX)
    except OSError:
        return MessageIds()
    end = _HEADER_END.search(head)
    header = BytesHeaderParser(policy=policy.compat32).parsebytes(head[: end.start()] if end else head)
    unique = unique_of(path.name)
    queue_id = None
    for received in header.get_all("Received") or []:
        for candidate in _RECEIVED_ID.findall(" ".join(str(received).split())):
            if delivery_unique(candidate, address) == unique:
                queue_id = candidate
                break
        if queue_id:
            break
    raw_id = header.get("Message-ID")
    message_id = " ".join(str(raw_id).split())[:_MESSAGE_ID_MAX] if raw_id else None
    return MessageIds(queue_id, message_id or None)


def event(ids: MessageIds, name: str, detail: dict[str, Any]) -> TraceEvent:
    return TraceEvent(
        queue_id=ids.queue_id or "", message_id=ids.message_id, service="pop3", event=name, detail=detail
    )


class TraceWriter:
    """Writes POP3's events to the site's trace stream."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def publish(self, events: list[TraceEvent]) -> None:
        if not events:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for item in events:
                    stage_publish(pipe, TRACE, item, maxlen=TRACE_MAXLEN)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("could not write trace events", extra={"error": str(exc), "events": len(events)})
