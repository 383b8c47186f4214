"""The live map's figures from the services' Prometheus counters and the site's queue gauges.

The console scrapes every service's `/metrics` (scrape.py) and hands each round's texts here. A hop's rate
is the increase of the counter that measures it over the last `window_s` seconds, summed over every
process (replica) of the site that serves it, in messages (recipients, retrievals) **per minute**. A
hop's depth is the site's queue gauges, which the auth service exports from Redis (docs/metrics.md).

Counters are per process, so increases are taken per process (one scraped address) and then summed:

- the first sample of a process is its baseline and adds nothing (a console started against services that
  ran for a day does not show a day's total as this minute's rate); a series that appears later in a
  process already known began at 0 (prometheus_client creates a labelled series at its first increment);
- a value below the previous one means the process restarted (counters start again at 0): its increase
  is the new value, as in Prometheus' `rate()`, never negative;
- a process not seen for a window is forgotten; if it comes back, it starts from a new baseline.

`COUNTERS` and `GAUGES` are the mapping docs/console.md documents.
"""

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from yubin.console.hops import DNS, ROLES, node

RATE_WINDOW_S = 60.0


@dataclass(frozen=True)
class Counter:
    """The samples of one counter that measure a hop: the sample name and the label values required."""

    sample: str
    labels: tuple[tuple[str, str], ...] = ()

    def matches(self, name: str, labels: dict[str, str]) -> bool:
        return name == self.sample and all(labels.get(k) == v for k, v in self.labels)


COUNTERS: dict[str, Counter] = {
    # client → submission: messages answered 250 after DATA (stored) by the submission service.
    "submission": Counter("yubin_smtpd_messages_accepted_total", (("role", "submission"),)),
    # relay → the other site's MX: delivery attempts, one per recipient and attempt, any result.
    "relay": Counter("yubin_relay_attempts_total"),
    # relay → DNS: the relay's MX lookups (route resolutions), answered or failed.
    DNS: Counter("yubin_relay_mx_lookups_total"),
    # the other site's relay → this MX: messages the MX answered 250 after DATA.
    "mx": Counter("yubin_smtpd_messages_accepted_total", (("role", "mx"),)),
    # mx → delivery: recipients local delivery handled (stored, duplicate, deferred, bounced).
    "delivery": Counter("yubin_delivery_recipients_total"),
    # delivery → mailbox: recipients stored in a Maildir.
    "mailbox": Counter("yubin_delivery_recipients_total", (("result", "stored"),)),
    # mailbox → POP3 → client: messages sent to a client (RETR and TOP).
    "pop3": Counter("yubin_pop3_retrievals_total"),
}

GAUGES: dict[str, tuple[tuple[str, str, str], ...]] = {
    # What waits at a hop: (gauge, label, value) summed. Deferred envelopes left the stream for the
    # retry set (in one transaction), so the two never count one envelope twice.
    "relay": (("yubin_queue_depth", "stream", "outbound"), ("yubin_retry_queue_size", "queue", "relay")),
    "delivery": (("yubin_queue_depth", "stream", "local"), ("yubin_retry_queue_size", "queue", "delivery")),
}
RETRY = {"relay": "relay", "delivery": "delivery"}
"""Role → `queue` label of `yubin_retry_queue_size`, shown beside the depth."""
OLDEST = {"relay": "outbound", "delivery": "local"}
"""Role → `stream` label of `yubin_queue_oldest_age_seconds`."""


@dataclass
class Scraped:
    """One `/metrics` answer: the site and the process (`instance`: the address scraped), or its error."""

    site: str
    instance: str
    text: str | None = None
    error: str | None = None


@dataclass
class SiteGauges:
    values: dict[tuple[str, str, str], float] = field(default_factory=dict)
    """(gauge, label, value) → gauge value; `(name, "", "")` for a gauge without labels."""

    def get(self, name: str, label: str = "", value: str = "") -> float | None:
        return self.values.get((name, label, value))


def parse(text: str) -> tuple[dict[str, float], SiteGauges | None]:
    """A `/metrics` text: each hop's counter total in this process, and the queue gauges if it has them."""
    totals: dict[str, float] = {}
    broken: set[str] = set()
    gauges = SiteGauges()
    for family in text_string_to_metric_families(text):
        if family.name.startswith("yubin_") and family.type == "gauge":
            for sample in family.samples:
                labels = list(sample.labels.items())
                if len(labels) <= 1 and math.isfinite(sample.value):  # pending (two labels) is not shown
                    label, value = labels[0] if labels else ("", "")
                    gauges.values[(sample.name, label, value)] = sample.value
            continue
        if family.type != "counter":
            continue
        for role, counter in COUNTERS.items():
            # The family alone (no series yet: none counted so far) says the process measures the hop.
            if counter.sample == f"{family.name}_total":
                totals.setdefault(role, 0.0)
        for sample in family.samples:
            for role, counter in COUNTERS.items():
                if not counter.matches(sample.name, sample.labels):
                    continue
                if math.isfinite(sample.value) and sample.value >= 0:
                    totals[role] = totals.get(role, 0.0) + sample.value
                else:  # no counter reads so: this answer says nothing about the hop (nor looks like a restart)
                    broken.add(role)
    for role in broken:
        totals.pop(role, None)
    redis_up = gauges.get("yubin_queue_redis_up")
    return totals, (gauges if redis_up == 1 else None)


def increase(previous: float | None, current: float) -> float:
    """How much a process's counter grew since its previous sample: 0 for a first sample, the new value
    after a restart (the counter began again at 0), never negative."""
    if previous is None:
        return 0.0
    return current - previous if current >= previous else current


@dataclass
class _Process:
    last: dict[str, float]
    seen: float
    fresh: bool = True


class Rates:
    """Each hop's rate over a sliding window and each site's queue gauges, fed one scrape round at a time."""

    def __init__(self, sites: list[str], window_s: float = RATE_WINDOW_S) -> None:
        self.sites = sites
        self.window_s = window_s
        self.started: float | None = None
        self.processes: dict[tuple[str, str], _Process] = {}
        self.increases: dict[str, deque[tuple[float, float]]] = {}
        self.measured: set[str] = set()
        """Nodes some scraped process has the counter of (the others show no rate: nothing measures them)."""
        self.gauges: dict[str, SiteGauges] = {}
        self.targets: dict[str, dict[str, int]] = {}
        self.errors: dict[str, str] = {}

    def _key(self, site: str, role: str) -> str:
        return DNS if role == DNS else node(site, role)

    def round(self, now: float, scraped: Iterable[Scraped]) -> None:
        """One scrape round of every target at `now` (a monotonic clock)."""
        if self.started is None:
            self.started = now
        self.gauges = {}
        self.targets = {site: {"up": 0, "down": 0} for site in self.sites}
        self.errors = {}
        for one in scraped:
            counts = self.targets.setdefault(one.site, {"up": 0, "down": 0})
            if one.text is None:
                counts["down"] += 1
                self.errors[one.instance] = one.error or "no answer"
                continue
            try:
                totals, gauges = parse(one.text)
            except ValueError as exc:  # not the text format: the target is something else
                counts["down"] += 1
                self.errors[one.instance] = f"unparsable metrics: {exc}"
                continue
            counts["up"] += 1
            # Every auth replica exports the same site-wide gauges: one answer is the site's (not a sum).
            if gauges is not None:
                self.gauges[one.site] = gauges
            process = self.processes.setdefault((one.site, one.instance), _Process({}, now))
            process.seen = now
            for role, total in totals.items():
                key = self._key(one.site, role)
                self.measured.add(key)
                # A series that first shows in a process already known was created by its first
                # increment (not every service creates its labelled series up front): it began at 0.
                grown = increase(process.last.get(role, None if process.fresh else 0.0), total)
                process.last[role] = total
                if grown:
                    self.increases.setdefault(key, deque()).append((now, grown))
            process.fresh = False
        for key, process in list(self.processes.items()):
            if process.seen < now - self.window_s:
                del self.processes[key]
        for window in self.increases.values():
            while window and window[0][0] <= now - self.window_s:
                window.popleft()

    def counted(self, key: str, now: float) -> float:
        return sum(grown for at, grown in self.increases.get(key, ()) if at > now - self.window_s)

    def snapshot(self, now: float) -> dict[str, dict[str, Any]]:
        """Node → {rate (per minute), count (in the window), depth, …}; None where nothing measures it."""
        span = min(self.window_s, now - self.started) if self.started is not None else 0.0
        stats: dict[str, dict[str, Any]] = {}
        keys = [node(site, role) for site in self.sites for role in ROLES] + [DNS]
        for key in keys:
            if key in self.measured and span > 0:
                count = self.counted(key, now)
                stats[key] = {"rate": round(count * 60.0 / span, 1), "count": round(count)}
            else:
                stats[key] = {"rate": None, "count": None}
            stats[key]["depth"] = None
        for site in self.sites:
            gauges = self.gauges.get(site)
            for role, parts in GAUGES.items():
                entry = stats[node(site, role)]
                if gauges is None:
                    continue
                values = [gauges.get(*part) for part in parts]
                entry["depth"] = round(sum(v for v in values if v is not None))
                entry["retry"] = round(gauges.get("yubin_retry_queue_size", "queue", RETRY[role]) or 0)
                entry["oldest_s"] = gauges.get("yubin_queue_oldest_age_seconds", "stream", OLDEST[role])
            dead = gauges.get("yubin_dead_letters") if gauges is not None else None
            stats[site] = {
                "dead_letters": None if dead is None else round(dead),
                "targets": self.targets.get(site, {"up": 0, "down": 0}),
            }
        return stats
