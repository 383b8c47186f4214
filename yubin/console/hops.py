"""The live map's model: which hop of which site a trace event belongs to, and each hop's rate and depth.

Nodes are `SITE/ROLE` (`alpha.test/relay`) plus the shared `dns`. A trace event moves a message along an
edge (`from` → `to`; the same node twice: something happened there, e.g. a deferral). Rates count the
events at a node in the last minute; depth is what the trace says is waiting there now (accepted for the
relay and not yet delivered, bounced or handed back; stored in a mailbox and not yet retrieved).
"""

from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.streams import LOCAL_DELIVERY, OUTBOUND

ROLES = ("client", "submission", "relay", "mx", "delivery", "mailbox", "pop3")
DNS = "dns"
RATE_WINDOW_S = 60.0
# Each depth set remembers at most this many messages: a long-running console must not grow without end.
MAX_TRACKED = 10_000


@dataclass(frozen=True)
class Hop:
    source: str
    target: str
    kind: str  # "move", "pulse" (something happened at one node) or "trouble" (deferral, bounce, error)


def node(site: str, role: str) -> str:
    return f"{site}/{role}"


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def _first_domain(detail: dict[str, Any]) -> str | None:
    if isinstance(detail.get("domain"), str):
        return detail["domain"].lower()
    recipients = detail.get("recipients")
    if isinstance(recipients, dict):
        recipients = list(recipients)
    if isinstance(recipients, list) and recipients and isinstance(recipients[0], str):
        return domain_of(recipients[0])
    return None


def where(event: dict[str, Any]) -> str:
    """The node an event happened at."""
    site, service, name = event.get("site", "?"), event.get("service"), event.get("event")
    if service == "relay" and name == "mx-lookup":
        return DNS
    if service == "delivery" and name == "stored":
        return node(site, "mailbox")
    if service in ("submission", "mx", "relay", "delivery", "pop3"):
        return node(site, service)
    return node(site, "relay")


def hop_of(event: dict[str, Any], sites: list[str]) -> Hop:
    """The edge a trace event moves its message along, for the map's animation."""
    site, service, name = event.get("site", "?"), event.get("service"), event.get("event")
    detail = event.get("detail") or {}
    here = where(event)
    if service == "submission" and name == "accepted":
        return Hop(node(site, "client"), node(site, "submission"), "move")
    if service == "mx" and name == "accepted":
        return Hop(node(site, "mx"), node(site, "delivery"), "move")
    if service == "relay" and name == "mx-lookup":
        kind = "trouble" if detail.get("error") else "move"
        return Hop(node(site, "relay"), DNS, kind)
    if service == "relay" and name in ("attempt", "delivered"):
        target = _first_domain(detail)
        reply = str(detail.get("reply") or "")
        kind = "trouble" if reply[:1] in ("4", "5") or detail.get("error") else "move"
        if target in sites and target != site:
            return Hop(node(site, "relay"), node(target, "mx"), kind)
        return Hop(here, here, kind)
    if service == "delivery" and name == "stored":
        return Hop(node(site, "delivery"), node(site, "mailbox"), "move")
    if service == "pop3" and name == "listed":
        return Hop(node(site, "mailbox"), node(site, "pop3"), "move")
    if service == "pop3" and name == "retrieved":
        return Hop(node(site, "pop3"), node(site, "client"), "move")
    trouble = name in ("deferred", "bounced", "bounce", "delay-notice", "dead", "error")
    return Hop(here, here, "trouble" if trouble else "pulse")


def parse_at(value: Any) -> float:
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return 0.0
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.timestamp()


class _Bounded:
    """An insertion-ordered set that forgets its oldest members past a limit."""

    def __init__(self, limit: int = MAX_TRACKED) -> None:
        self.items: OrderedDict[str, None] = OrderedDict()
        self.limit = limit

    def add(self, key: str) -> None:
        self.items[key] = None
        self.items.move_to_end(key)
        while len(self.items) > self.limit:
            self.items.popitem(last=False)

    def discard(self, key: str) -> None:
        self.items.pop(key, None)

    def __len__(self) -> int:
        return len(self.items)


class HopStats:
    def __init__(self, sites: list[str]) -> None:
        self.sites = sites
        self.recent: deque[tuple[float, str]] = deque(maxlen=MAX_TRACKED * 5)
        self.waiting: dict[str, _Bounded] = {}

    def _waiting(self, site: str, role: str) -> _Bounded:
        return self.waiting.setdefault(node(site, role), _Bounded())

    def observe(self, event: dict[str, Any]) -> None:
        at = parse_at(event.get("at"))
        self.recent.append((at, where(event)))
        site, service, name = event.get("site", "?"), event.get("service"), event.get("event")
        detail = event.get("detail") or {}
        queue_id = str(event.get("queue_id") or "")
        message_id = str(event.get("message_id") or "")
        if service in ("submission", "mx") and name == "accepted":
            streams = detail.get("streams") or []
            if OUTBOUND in streams:
                self._waiting(site, "relay").add(queue_id)
            if LOCAL_DELIVERY in streams:
                self._waiting(site, "delivery").add(queue_id)
        elif service == "relay" and name in ("delivered", "bounced"):
            self._waiting(site, "relay").discard(queue_id)
        elif service == "relay" and name == "deferred":
            self._waiting(site, "relay").add(queue_id)
        elif service == "delivery" and name in ("stored", "duplicate-suppressed", "bounced"):
            self._waiting(site, "delivery").discard(queue_id)
            if name == "stored" and message_id:
                self._waiting(site, "mailbox").add(message_id)
        elif service == "pop3" and name in ("retrieved", "deleted") and message_id:
            self._waiting(site, "mailbox").discard(message_id)

    def snapshot(self, now: float | None = None) -> dict[str, dict[str, int]]:
        now = datetime.now(UTC).timestamp() if now is None else now
        while self.recent and self.recent[0][0] < now - RATE_WINDOW_S:
            self.recent.popleft()
        stats: dict[str, dict[str, int]] = {
            node(site, role): {"rate": 0, "depth": 0} for site in self.sites for role in ROLES
        }
        stats[DNS] = {"rate": 0, "depth": 0}
        for at, where_ in self.recent:
            if now - RATE_WINDOW_S <= at <= now and where_ in stats:
                stats[where_]["rate"] += 1
        for key, waiting in self.waiting.items():
            if key in stats:
                stats[key]["depth"] = len(waiting)
        return stats
