"""The live feed: every site's trace stream, followed by the console server and fanned out to the pages.

One task per site reads its admin API's `/v1/trace/stream` (after the last events it already had, so a
reconnect misses nothing the stream still holds) and feeds the map's statistics and each open page.
"""

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from typing import Any

from yubin.console.hops import HopStats, hop_of
from yubin.console.upstream import SiteClient, UpstreamError

log = logging.getLogger(__name__)

RECENT = 300
HISTORY = 300
# A page that reads slower than this many events behind is dropped (its EventSource reconnects).
SUBSCRIBER_BACKLOG = 1000
RECONNECT_MAX_S = 10.0
KNOWN_SUBJECTS = 1000


class Feed:
    def __init__(self, clients: list[SiteClient]) -> None:
        self.clients = clients
        self.sites = [c.domain for c in clients]
        self.stats = HopStats(self.sites)
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self.subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self.status: dict[str, str] = {site: "connecting" for site in self.sites}
        self.tasks: list[asyncio.Task[None]] = []
        self.subjects: OrderedDict[str, str] = OrderedDict()
        """Message-ID (or "site queue id" without one) → subject, the last KNOWN_SUBJECTS: learnt from
        `accepted` events (only they carry it) and from this console's own form (known before its event)."""

    def remember_subject(self, message_id: str, subject: str) -> None:
        self.subjects[message_id] = subject
        while len(self.subjects) > KNOWN_SUBJECTS:
            self.subjects.popitem(last=False)

    def learn_subject(self, event: dict[str, Any]) -> None:
        subject = (event.get("detail") or {}).get("subject")
        if event.get("event") == "accepted" and isinstance(subject, str):
            key = subject_key(event)
            # The first one told stays: beta's MX accepts the same message again, and a stranger's
            # message reusing its Message-ID should not relabel it.
            if key not in self.subjects:
                self.remember_subject(key, subject)

    def with_subject(self, event: dict[str, Any]) -> dict[str, Any]:
        subject = self.subjects.get(subject_key(event))
        return {**event, "subject": subject} if subject is not None else event

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._follow(client)) for client in self.clients]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def publish(self, event: dict[str, Any]) -> None:
        self.learn_subject(event)
        hop = hop_of(event, self.sites)
        enriched = {
            **self.with_subject(event),
            "hop": {"from": hop.source, "to": hop.target, "kind": hop.kind},
        }
        self.stats.observe(event)
        self.recent.append(enriched)
        for queue in list(self.subscribers):
            try:
                queue.put_nowait(enriched)
            except asyncio.QueueFull:
                # Its page reconnects and starts again from the map's snapshot.
                self.subscribers.discard(queue)

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(SUBSCRIBER_BACKLOG)
        self.subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self.subscribers.discard(queue)

    async def _follow(self, client: SiteClient) -> None:
        last_id: str | None = None
        delay = 0.5
        while True:
            try:
                if last_id is None:
                    history, last_id = await client.latest(HISTORY)
                    for event in history:
                        self.publish(event)
                self.status[client.domain] = "live"
                async for event_id, event in client.stream(last_id):
                    last_id = event_id or event.get("id") or last_id
                    self.publish(event)
                    delay = 0.5
            except asyncio.CancelledError:
                raise
            except (UpstreamError, Exception) as exc:
                self.status[client.domain] = f"unreachable: {exc}"
                log.warning("trace feed interrupted", extra={"site": client.domain, "error": str(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)


def subject_key(event: dict[str, Any]) -> str:
    """A message's key in `Feed.subjects`: its Message-ID, else its queue id at its site."""
    return str(event.get("message_id") or f"{event.get('site')} {event.get('queue_id')}")
