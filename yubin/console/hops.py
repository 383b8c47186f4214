"""The live map's model: which hop of which site a trace event belongs to, and each hop's rate and depth.

Nodes are `SITE/ROLE` (`alpha.test/relay`) plus the shared `dns`. A trace event moves a message along an
edge (`from` → `to`; the same node twice: something happened there, e.g. a deferral). The rates and queue
depths come from the services' counters and gauges (rates.py); the trace gives only the mailbox's
"stored, not yet retrieved".
"""

from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

ROLES = ("client", "submission", "relay", "mx", "delivery", "mailbox", "pop3")
DNS = "dns"
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
    """What the trace alone can tell: the messages stored in a mailbox and not yet retrieved.

    No metric measures that (the Maildirs are files that delivery and POP3 replicas share; see
    docs/console.md); every other figure of the map comes from the services' counters (rates.py)."""

    def __init__(self, sites: list[str]) -> None:
        self.sites = sites
        self.waiting: dict[str, _Bounded] = {}

    def observe(self, event: dict[str, Any]) -> None:
        site, service, name = event.get("site", "?"), event.get("service"), event.get("event")
        message_id = str(event.get("message_id") or "")
        if not message_id:
            return
        if service == "delivery" and name == "stored":
            self.waiting.setdefault(node(site, "mailbox"), _Bounded()).add(message_id)
        elif service == "pop3" and name in ("retrieved", "deleted"):
            self.waiting.setdefault(node(site, "mailbox"), _Bounded()).discard(message_id)

    def snapshot(self) -> dict[str, int]:
        """Mailbox node → messages stored and not yet retrieved, as far as the trace the console saw tells."""
        return {
            node(site, "mailbox"): len(self.waiting.get(node(site, "mailbox"), ())) for site in self.sites
        }
