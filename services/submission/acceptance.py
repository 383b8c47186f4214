"""Accepting a message: add our header fields, then store the body once and publish one envelope per
route (local delivery, relay) plus an "accepted" trace event, all in one MULTI (`shared.enqueue`).

Only after that returns does the client get `250 ... queued as <id>`.
"""

import logging
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from services.submission import headers, replies
from services.submission.headers import ClientInfo
from services.submission.subject import subject_of
from shared.enqueue import enqueue
from shared.models import Envelope, TraceEvent, new_queue_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Transaction:
    """One mail transaction as the session collected it."""

    sender: str  # "" = null sender
    routes: dict[str, str]  # recipient → stream, in RCPT order
    original_recipients: dict[str, str]  # recipient → the alias it was expanded from (RCPT TO address)
    auth_user: str | None
    client: ClientInfo


@dataclass(frozen=True)
class Accepted:
    queue_id: str
    message_id: str | None


class MessageQueue(Protocol):
    """Where an accepted message goes; `enqueue` returns only once it is durable."""

    async def enqueue(self, body: bytes, routes: dict[str, Envelope], trace: TraceEvent) -> None: ...


class RedisMessageQueue:
    """The real queue: one MULTI/EXEC in Redis (`shared.enqueue`)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def enqueue(self, body: bytes, routes: dict[str, Envelope], trace: TraceEvent) -> None:
        await enqueue(self._redis, body, routes, trace)


class MailLoop(Exception):
    """More Received fields than `replies.MAX_RECEIVED_HEADERS`."""


async def accept_message(
    queue: MessageQueue,
    content: bytes,
    transaction: Transaction,
    *,
    hostname: str,
    role: str,
    add_missing_headers: bool,
    trace_subject: bool = True,
) -> Accepted:
    """Store and publish; raises MailLoop, or a Redis error when the store is unreachable (nothing stored)."""
    parsed = headers.parse_headers(content)
    hops = headers.count_received(parsed)
    if hops > replies.MAX_RECEIVED_HEADERS:
        raise MailLoop(hops)
    queue_id = new_queue_id()
    added = headers.received_header(transaction.client, by_host=hostname, role=role, queue_id=queue_id)
    message_id = headers.message_id_of(parsed)
    if add_missing_headers:
        missing, new_id = headers.submission_headers(parsed, hostname=hostname)
        added += missing
        message_id = message_id or new_id
    body = added + content

    by_stream: dict[str, list[str]] = {}
    for recipient, stream in transaction.routes.items():
        by_stream.setdefault(stream, []).append(recipient)
    routes = {
        stream: Envelope(
            queue_id=queue_id,
            sender=transaction.sender,
            recipients=recipients,
            original_recipients={
                r: transaction.original_recipients[r]
                for r in recipients
                if r in transaction.original_recipients
            },
            auth_user=transaction.auth_user,
            client_addr=transaction.client.address,
            helo=headers.safe_helo(transaction.client.helo),
            message_id=message_id,
            hop_count=hops + 1,  # counting the Received field we just added
            body_id="pending",  # filled in by enqueue
            prepended=len(added),
        )
        for stream, recipients in by_stream.items()
    }
    trace = TraceEvent(
        queue_id=queue_id,
        message_id=message_id,
        service=role,
        event="accepted",
        detail={
            "sender": transaction.sender,
            "recipients": list(transaction.routes),
            "streams": sorted(by_stream),
            "size": len(body),
            "client": transaction.client.address,
            "auth_user": transaction.auth_user,
        },
    )
    subject = subject_of(content) if trace_subject else None
    if subject is not None:
        trace.detail["subject"] = subject  # for people watching; absent when the message has none
    await queue.enqueue(body, routes, trace)
    return Accepted(queue_id=queue_id, message_id=message_id)
