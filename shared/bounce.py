"""Sending a DSN back to a message's sender, staged into the caller's transaction.

The bounce is a new message from the null sender `<>` to the original sender, accepted like any other: its
body and envelope are staged with `shared.enqueue.stage_enqueue`. The caller adds its stream
acknowledgement (and whatever else finishes the original's work) to the same MULTI, so after a crash either
both happened or neither did: no lost bounce, no second bounce.

Two trace events link the DSN and the message it reports on, so either one's journey leads to the other:
the original's `bounce` / `delay-notice` (its queue id and Message-ID, with `notice_queue_id` and
`notice_message_id`), and the DSN's own `dsn` (its queue id and Message-ID, with `original_queue_id` and
`original_message_id`).

A message whose sender is `<>` is itself a bounce (or some other notification) and is never bounced
(RFC 5321 §4.5.5, RFC 3464 §2): two mail systems would otherwise bounce bounces at each other forever.
"""

from datetime import datetime
from email.parser import BytesHeaderParser

from redis.asyncio.client import Pipeline

from shared.bus import stage_publish
from shared.dsn import build_dsn
from shared.enqueue import stage_enqueue
from shared.models import NULL_SENDER, Envelope, RecipientStatus, TraceEvent
from shared.streams import LOCAL_DELIVERY, OUTBOUND, TRACE, TRACE_MAXLEN


def route_for(address: str, local_domains: set[str]) -> str:
    """LOCAL_DELIVERY for an address in one of our domains, OUTBOUND for anyone else."""
    domain = address.rpartition("@")[2].lower()
    return LOCAL_DELIVERY if domain in {d.lower() for d in local_domains} else OUTBOUND


def stage_bounce(
    pipe: Pipeline,
    envelope: Envelope,
    statuses: list[RecipientStatus],
    original: bytes | None,
    reporting_mta: str,
    *,
    local_domains: set[str],
    delayed: bool = False,
    will_retry_until: datetime | None = None,
    service: str = "relay",
) -> Envelope | None:
    """Stage a DSN for `statuses` of `envelope` to its sender; returns the bounce's envelope.

    Returns None and stages nothing when the envelope's sender is the null sender, or there is nothing to
    report. `delayed` sends a "still being retried" warning instead of a failure report.
    """
    if envelope.sender == NULL_SENDER or not statuses:
        return None
    dsn = build_dsn(
        envelope, statuses, original, reporting_mta, delayed=delayed, will_retry_until=will_retry_until
    )
    message_id = BytesHeaderParser().parsebytes(dsn).get("Message-ID")
    notice = Envelope(
        sender=NULL_SENDER,
        recipients=[envelope.sender],
        message_id=message_id,
        body_id="",  # stage_enqueue fills in the body id and size
    )
    stream = route_for(envelope.sender, local_domains)
    trace = TraceEvent(
        queue_id=envelope.queue_id,
        message_id=envelope.message_id,
        service=service,
        event="delay-notice" if delayed else "bounce",
        detail={
            "notice_queue_id": notice.queue_id,
            "notice_message_id": message_id,
            "to": envelope.sender,
            "stream": stream,
            "recipients": [s.recipient for s in statuses],
            "statuses": [s.status for s in statuses],
        },
    )
    published = stage_enqueue(pipe, dsn, {stream: notice}, trace)
    link = TraceEvent(
        queue_id=notice.queue_id,
        message_id=message_id,
        service=service,
        event="dsn",
        detail={
            "report": "delayed" if delayed else "failed",
            "original_queue_id": envelope.queue_id,
            "original_message_id": envelope.message_id,
            "to": envelope.sender,
            "stream": stream,
            "recipients": [s.recipient for s in statuses],
        },
    )
    stage_publish(pipe, TRACE, link, maxlen=TRACE_MAXLEN)
    return published[stream]
