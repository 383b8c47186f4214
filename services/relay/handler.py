"""One OUTBOUND envelope: deliver to every domain, then record the outcome in ONE transaction.

The transaction (MULTI/EXEC) holds everything that finishes this attempt:
- a bounce (DSN) for recipients that failed for good, or whose message outlived the queue lifetime,
- the deferred rest back into the retry set (attempts + 1), with a one-time "delayed" DSN when due,
- the release of our hold on the body once no recipient is left,
- trace events, and the acknowledgement of the stream entry.

So a crash before EXEC leaves the entry pending and it is redelivered; no bounce is lost or sent twice, and
the body is never released while a retry still needs it. Recipients a remote already accepted are not sent
again: each remote's 250 to DATA is recorded at once (`sent_record`), and the redelivery skips them.
"""

import asyncio
import logging
import random
import time
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from services.relay import metrics
from services.relay.delivery import DomainDelivery, domain_of, smtp_path_ok
from services.relay.local_domains import LocalDomains
from services.relay.sent_record import SentRecord
from shared.body_store import BODY_KEY, RedisBodyStore, holder
from shared.bounce import stage_bounce
from shared.bus import Consumer, Entry, stage_publish
from shared.config.relay import RelaySettings
from shared.log import log_context
from shared.models import Envelope, RecipientState, RecipientStatus, TraceEvent
from shared.retry_queue import RetryQueue, expire
from shared.streams import OUTBOUND, TRACE, TRACE_MAXLEN

log = logging.getLogger(__name__)


class RelayHandler:
    def __init__(
        self,
        redis: Redis,
        consumer: Consumer,
        settings: RelaySettings,
        delivery: DomainDelivery,
        retry: RetryQueue,
        local_domains: LocalDomains,
        rng: random.Random | None = None,
    ) -> None:
        self.redis = redis
        self.bodies = RedisBodyStore(redis)
        self.consumer = consumer
        self.settings = settings
        self.delivery = delivery
        self.retry = retry
        self.local_domains = local_domains
        self.policy = settings.retry_policy
        self.rng = rng or random.Random()
        self.sent = SentRecord(redis, settings.relay_sent_record_ttl_s)

    async def __call__(self, entry: Entry) -> None:
        envelope = await self.consumer.parse_or_dead_letter(entry, Envelope)
        if envelope is None:
            return
        with log_context(**envelope.log_fields()):
            await self.handle(entry, envelope)

    async def handle(self, entry: Entry, envelope: Envelope) -> None:
        # Learn the local domains before sending anything: failing after a remote 250 would make the
        # redelivered entry send the message again.
        local_domains = set() if envelope.is_bounce else await self.local_domains.get()
        # The body and the recipients an earlier attempt of this entry already handed over: one round trip.
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(BODY_KEY.format(envelope.body_id))  # RedisBodyStore.get, inside the pipeline
            self.sent.stage_recorded(pipe, envelope.queue_id)
            body, recorded = await pipe.execute()
        if body is None:
            await self.consumer.dead_letter(entry, f"body {envelope.body_id} is missing")
            return
        log.debug(
            "delivering",
            extra={
                "attempt": envelope.attempts + 1,
                "recipients": envelope.recipients,
                "entry_deliveries": entry.deliveries,
            },
        )
        events: list[TraceEvent] = []
        statuses = await self.attempt(envelope, body, self.sent.parse(recorded), events)
        await self.finish(entry, envelope, body, statuses, local_domains, events)

    async def attempt(
        self,
        envelope: Envelope,
        body: bytes,
        recorded: dict[str, RecipientStatus],
        events: list[TraceEvent],
    ) -> list[RecipientStatus]:
        """Deliver to all domains at once (one SMTP connection each); one status per recipient.

        `recorded`: recipients an earlier attempt of this entry handed over before it crashed (not again).
        The attempt's trace events go into `events`; `finish` writes them with the outcome, in its one
        transaction (each event keeps the time it happened, so the trace still reads in order)."""

        def trace(event: str, detail: dict[str, Any]) -> None:
            detail = {"attempt": envelope.attempts + 1, **detail}
            log.debug(event, extra=detail)
            events.append(self._event(envelope, event, detail))

        already = [recorded[r] for r in dict.fromkeys(envelope.recipients) if r in recorded]
        recipients = [r for r in dict.fromkeys(envelope.recipients) if r not in recorded]
        if already:
            trace("already-sent", {"recipients": {s.recipient: _outcome(s) for s in already}})
        if not recipients:
            return already
        if not smtp_path_ok(envelope.sender, mailbox=False):
            return already + [
                RecipientStatus(
                    recipient=r, state=RecipientState.FAILED, status="5.1.7", diagnostic="bad sender address"
                )
                for r in recipients
            ]
        refused = [
            RecipientStatus(
                recipient=r, state=RecipientState.FAILED, status="5.1.3", diagnostic="bad recipient address"
            )
            for r in recipients
            if not smtp_path_ok(r, mailbox=True)
        ]
        by_domain: dict[str, list[str]] = {}
        for recipient in recipients:
            if smtp_path_ok(recipient, mailbox=True):
                by_domain.setdefault(domain_of(recipient), []).append(recipient)

        # Without a connection cache the QUIT is awaited before the outcome is written: keep the record.
        quit_in_background = self.delivery.connections is not None
        only_domain = next(iter(by_domain.values())) if len(by_domain) == 1 and quit_in_background else None

        async def accepted(statuses: list[RecipientStatus]) -> None:
            if only_domain is not None and len(statuses) == len(only_domain):
                # Every recipient left is accepted, and no other domain is in flight: `finish` writes
                # the outcome next, with no network wait in between, so the record would only add a
                # round trip without narrowing the window (see `sent_record`).
                return
            await self.sent.record(envelope.queue_id, statuses)

        results = await asyncio.gather(
            *(
                self.delivery.deliver(domain, envelope.sender, rcpts, body, trace, accepted)
                for domain, rcpts in by_domain.items()
            )
        )
        return already + refused + [status for result in results for status in result]

    async def finish(
        self,
        entry: Entry,
        envelope: Envelope,
        body: bytes,
        statuses: list[RecipientStatus],
        local_domains: set[str],
        events: list[TraceEvent],
    ) -> None:
        now = time.time()
        attempts = envelope.attempts + 1
        expires_at = self.policy.expires_at(envelope)
        delivered = [s for s in statuses if s.state == RecipientState.DELIVERED]
        failed = [s for s in statuses if s.state == RecipientState.FAILED]
        deferred = [s for s in statuses if s.state == RecipientState.DEFERRED]
        if deferred and self.policy.expired(envelope, now):
            failed += expire(deferred, attempts)
            deferred = []

        async with self.redis.pipeline(transaction=True) as pipe:
            bounce = stage_bounce(
                pipe,
                envelope,
                failed,
                body,
                self.settings.hostname,
                local_domains=local_domains,
            )
            if deferred:
                retry = envelope.model_copy(
                    update={"recipients": [s.recipient for s in deferred], "attempts": attempts}
                )
                if self.policy.delay_notice_due(envelope, now):
                    stage_bounce(
                        pipe,
                        envelope,
                        deferred,
                        body,
                        self.settings.hostname,
                        local_domains=local_domains,
                        delayed=True,
                        will_retry_until=datetime.fromtimestamp(expires_at, UTC),
                    )
                    retry = retry.model_copy(update={"delay_notified": True})
                due = self.policy.next_due(envelope, attempts, now, self.rng)
                self.retry.stage_defer(pipe, retry, due, deferred)
            else:
                # Nothing left to do: let go of the body (the last holder deletes it).
                self.bodies.stage_release(pipe, envelope.body_id, holder(OUTBOUND, envelope.queue_id))
            for step in events:
                stage_publish(pipe, TRACE, step, maxlen=TRACE_MAXLEN)
            for event, group in (("delivered", delivered), ("bounced", failed), ("deferred", deferred)):
                if group:
                    detail: dict[str, Any] = {
                        "attempt": attempts,
                        "recipients": {s.recipient: _outcome(s) for s in group},
                    }
                    if event == "deferred":
                        detail["next_attempt_at"] = datetime.fromtimestamp(due, UTC).isoformat()
                    stage_publish(pipe, TRACE, self._event(envelope, event, detail), maxlen=TRACE_MAXLEN)
            self.sent.stage_forget(pipe, envelope.queue_id)
            self.consumer.stage_ack(pipe, entry)
            await pipe.execute()

        metrics.finished(envelope, delivered + failed + deferred, now)
        if deferred:
            self.retry.notify()
        log.info(
            "attempt finished",
            extra={
                "attempt": attempts,
                "delivered": [s.recipient for s in delivered],
                "bounced": [s.recipient for s in failed],
                "deferred": [s.recipient for s in deferred],
                "bounce_queue_id": bounce.queue_id if bounce else None,
            },
        )

    def _event(self, envelope: Envelope, event: str, detail: dict[str, Any]) -> TraceEvent:
        return TraceEvent(
            queue_id=envelope.queue_id,
            message_id=envelope.message_id,
            service="relay",
            event=event,
            detail=detail,
        )


def _outcome(status: RecipientStatus) -> str:
    return f"{status.status} {status.diagnostic or ''}".strip()
