"""A message's journey across both sites: the trace events of every site that name it, in time order.

Queue ids are per site (beta's MX gives the message a new one); the Message-ID is the same everywhere. A
DSN the message caused is a message of its own (its notice queue id, its own Message-ID), linked from
the bounce or delay-notice event: its events join the timeline, marked as the DSN's.
"""

from typing import Any

from yubin.console.hops import parse_at


def event_key(event: dict[str, Any]) -> tuple[str, str]:
    """Identifies one event across repeated queries (its stream id if the API gives one)."""
    ident = event.get("id")
    if ident:
        return (str(event.get("site")), str(ident))
    return (
        str(event.get("site")),
        f"{event.get('queue_id')}|{event.get('service')}|{event.get('event')}|{event.get('at')}",
    )


def merge(*batches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every event once, oldest first."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for batch in batches:
        for event in batch:
            seen.setdefault(event_key(event), event)
    return sorted(seen.values(), key=lambda e: (parse_at(e.get("at")), str(e.get("id") or "")))


def dsn_queue_ids(events: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(site, queue id) of each DSN these events caused."""
    found = set()
    for event in events:
        detail = event.get("detail") or {}
        notice = detail.get("notice_queue_id")
        if event.get("event") in ("bounce", "delay-notice") and isinstance(notice, str) and notice:
            found.add((str(event.get("site")), notice))
    return found


def timeline(
    events: list[dict[str, Any]],
    dsn_message_ids: set[str],
    dsn_queue_ids: set[str],
    own_message_ids: set[str] | None = None,
) -> list[dict[str, Any]]:
    """The events with the time since the previous step, each DSN event marked (a DSN's events are found
    by the trace API's links too: then they are the ones with another Message-ID than the message's)."""
    result = []
    previous: float | None = None
    for event in merge(events):
        at = parse_at(event.get("at"))
        message_id = event.get("message_id")
        is_dsn = (
            message_id in dsn_message_ids
            or event.get("queue_id") in dsn_queue_ids
            or bool(own_message_ids and message_id and message_id not in own_message_ids)
        )
        result.append(
            {
                **event,
                "since_previous_ms": None if previous is None else round((at - previous) * 1000),
                "dsn": bool(is_dsn and event.get("event") not in ("bounce", "delay-notice")),
            }
        )
        previous = at
    return result


def subject_of(events: list[dict[str, Any]], message_ids: set[str]) -> str | None:
    """The Subject the message's first `accepted` event names (a DSN's are another message's)."""
    for event in merge(events):
        subject = (event.get("detail") or {}).get("subject")
        own = event.get("message_id") in message_ids if message_ids else not event.get("message_id")
        if event.get("event") == "accepted" and isinstance(subject, str) and own:
            return subject
    return None


def summarize(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Search results: one row per message (by Message-ID, else by site and queue id), newest first."""
    rows: dict[str, dict[str, Any]] = {}
    for event in merge(events):
        key = event.get("message_id") or f"{event.get('site')}:{event.get('queue_id')}"
        row = rows.setdefault(
            key,
            {
                "message_id": event.get("message_id"),
                "queue_ids": [],
                "sites": [],
                "first_at": event.get("at"),
                "sender": None,
                "recipients": [],
                "subject": None,
            },
        )
        detail = event.get("detail") or {}
        for field, value in (("queue_ids", event.get("queue_id")), ("sites", event.get("site"))):
            if value and value not in row[field]:
                row[field].append(value)
        if event.get("event") == "accepted":
            row["sender"] = row["sender"] or detail.get("sender")
            row["recipients"] = row["recipients"] or list(detail.get("recipients") or [])
            row["subject"] = row["subject"] or detail.get("subject")
        if event.get("subject") is not None:
            row["subject"] = row["subject"] or event["subject"]
        row["last_at"] = event.get("at")
        row["last_event"] = f"{event.get('site')} {event.get('service')} {event.get('event')}"
    return sorted(rows.values(), key=lambda r: parse_at(r.get("last_at")), reverse=True)
