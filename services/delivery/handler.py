"""One LOCAL_DELIVERY entry: store the message in each recipient's Maildir, then finish in one MULTI.

Per recipient (`deliver_one`):
1. Already done? A Redis marker (`yubin:delivered:<queue id>:<recipient>`) or the delivery's file in
   `new/`/`cur/` means an earlier attempt stored it: do not store a second copy. The file name is the same
   on every attempt (`delivery_file_name`), so looking for it is a `stat`, not a listing of the mailbox.
   (The body and the markers of all recipients are read in one Redis round trip; in a second, the claims
   of step 5 are taken at once for every recipient not marked, SET NX GET answering who held them.)
2. A copy of the same message (Message-ID, sender and body as sent) already claimed for this recipient
   under another queue id? Then this one is a duplicate from the SMTP hop: delivered, nothing written
   (see `duplicates`).
3. Ask the auth service: a recipient deleted or disabled since acceptance fails (5.1.1, bounced).
4. Quota: a message larger than the whole quota fails at once (5.2.2); one that does not fit what is left
   (usage kept in Redis, `shared.mailbox_usage`) defers (4.2.2).
5. Claim the copy for this recipient (lost the race → duplicate, as in 2.); write `tmp/<name>.<random>`,
   fsync; set the marker; rename to `new/<name>`, fsync `new/` (`group_commit`: one fsync for the renames
   into a directory at about the same moment, each returning only after the fsync that covers it).
   The file check of 1. runs after 3. and 4., in the worker-thread trip that writes the file. (`handle` takes the claim before 3. and
   4., in the round trip that tells 2.; a recipient refused there gives it back at once.)
   The marker is set *before* the rename, so a redelivery after a crash recognizes the delivery even if
   the user fetched and deleted the file in between; a marker with a file left in `tmp/` means the crash
   came between marker and rename, and the redelivery writes the file again and renames it.

Then (`finish`) one MULTI: a trace event per stored file and its size added to the mailbox usage, the
bounce for failed recipients, the deferred recipients into the retry queue with the one "delayed" DSN when
due (or, when nothing is left, the release of the body), and the stream acknowledgement. A crash before
EXEC redoes the entry, which step 1 makes harmless. tests/integration/delivery/test_durable_sequence.py
checks this order system call by system call.
"""

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from services.delivery import mailbox_files, metrics
from services.delivery.duplicates import DuplicateClaims, claim_key, copy_digest, normalized_message_id
from services.delivery.group_commit import GroupCommit
from services.delivery.retry_queue import delivery_retry_queue
from services.delivery.stored_message import stored_message
from shared.auth_client import AuthClient, AuthUnavailable
from shared.body_store import BODY_KEY, RedisBodyStore, holder
from shared.bounce import stage_bounce
from shared.bus import Consumer, Entry, stage_publish
from shared.config.delivery import DeliverySettings
from shared.log import log_context
from shared.mailbox_usage import MailboxUsage, stage_add
from shared.maildir import (
    UnsafeAddress,
    delivery_unique,
    mailbox_path,
    maildir_name,
    parse_sizes,
    wire_size,
)
from shared.models import Envelope, RecipientState, RecipientStatus, TraceEvent
from shared.retry_queue import RetryQueue, expire
from shared.streams import LOCAL_DELIVERY, TRACE, TRACE_MAXLEN

log = logging.getLogger(__name__)

MARKER = "yubin:delivered:{}:{}"
"""Set once a message's file for a recipient is complete (before its rename into new/); with a TTL."""


@dataclass(frozen=True)
class Outcome:
    status: RecipientStatus
    stored: Path | None = None
    """The message's file in the Maildir, when this attempt stored it or found it stored."""
    recovered: bool = False
    """True when an earlier, interrupted attempt had stored it (its trace event was lost with it)."""
    duplicate_of: str | None = None
    """The queue id of the copy of this message (same Message-ID) that was stored instead of this one."""


@dataclass(frozen=True)
class Earlier:
    """What Redis remembers of earlier attempts at one recipient of one envelope."""

    marked: bool
    """The marker is set: an earlier attempt completed the file (see the module docstring)."""
    claim_holder: str | None
    """The queue id holding this Message-ID's claim for the recipient (see `duplicates`), if any."""
    claimed: bool = False
    """This attempt already holds the claim (taken by `handle`): step 5 need not take it again."""
    claim: str | None = None
    """The claim key, when `handle` computed it (a digest of the body: computed once per entry)."""


def delivery_file_name(envelope: Envelope, recipient: str, hostname: str, data: bytes) -> str:
    """The file name of `envelope`'s message for `recipient`: the same on every attempt (its time is the
    acceptance time), so a retry finds an earlier attempt's file with a `stat` instead of a listing."""
    unique = delivery_unique(envelope.queue_id, recipient)
    return maildir_name(unique, hostname, len(data), wire_size(data), when=envelope.received_at.timestamp())


def _delivered(recipient: str, stored: Path | None, *, recovered: bool = False) -> Outcome:
    status = RecipientStatus(recipient=recipient, state=RecipientState.DELIVERED, status="2.0.0")
    return Outcome(status, stored, recovered)


def _duplicate(recipient: str, original_queue_id: str) -> Outcome:
    status = RecipientStatus(recipient=recipient, state=RecipientState.DELIVERED, status="2.0.0")
    return Outcome(status, duplicate_of=original_queue_id)


def _deferred(recipient: str, status: str, diagnostic: str) -> Outcome:
    return Outcome(
        RecipientStatus(
            recipient=recipient, state=RecipientState.DEFERRED, status=status, diagnostic=diagnostic
        )
    )


def _failed(recipient: str, status: str, diagnostic: str) -> Outcome:
    return Outcome(
        RecipientStatus(
            recipient=recipient, state=RecipientState.FAILED, status=status, diagnostic=diagnostic
        )
    )


class Deliverer:
    """The LOCAL_DELIVERY handler (`handle`) for `shared.bus.run_consumer`."""

    def __init__(
        self,
        settings: DeliverySettings,
        redis: Redis,
        auth: AuthClient,
        consumer: Consumer,
        retry: RetryQueue | None = None,
    ) -> None:
        self.settings = settings
        self.retry = retry or delivery_retry_queue(redis)
        self.policy = settings.retry_policy
        self.redis = redis
        self.auth = auth
        self.consumer = consumer
        self.bodies = RedisBodyStore(redis)
        self.duplicates = DuplicateClaims(redis, settings.delivery_duplicate_ttl_s)
        self.usage = MailboxUsage(redis)
        self.commits = GroupCommit()
        self._local_domains: set[str] | None = None

    async def handle(self, entry: Entry) -> None:
        envelope = await self.consumer.parse_or_dead_letter(entry, Envelope)
        if envelope is None:
            return
        with log_context(**envelope.log_fields()):
            recipients = list(dict.fromkeys(envelope.recipients))
            body, marked = await self._body_and_markers(envelope, recipients)
            if body is None:
                await self._body_missing(entry, envelope)
                return
            # A first attempt is logged by its outcome ("stored", "recipients failed/deferred"): one line
            # per message rather than two. Retries say so.
            log.log(
                logging.INFO if envelope.attempts else logging.DEBUG,
                "delivering",
                extra={"recipients": envelope.recipients, "attempt": envelope.attempts + 1},
            )
            claims = self._claim_keys(envelope, body, recipients)
            holders = await self._take_claims(envelope, claims, marked)
            outcomes = [
                await self.deliver_one(
                    envelope,
                    body,
                    r,
                    Earlier(marked[r], holders.get(r), claimed=r in holders, claim=claims[r]),
                )
                for r in recipients
            ]
            await self.finish(entry, envelope, body, outcomes)

    async def _body_and_markers(
        self, envelope: Envelope, recipients: list[str]
    ) -> tuple[bytes | None, dict[str, bool]]:
        """The body and whether each recipient's marker is set, in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(BODY_KEY.format(envelope.body_id))
            for recipient in recipients:
                pipe.exists(MARKER.format(envelope.queue_id, recipient))
            body, *markers = await pipe.execute()
        return body, {r: bool(m) for r, m in zip(recipients, markers, strict=True)}

    async def _take_claims(
        self, envelope: Envelope, claims: dict[str, str | None], marked: dict[str, bool]
    ) -> dict[str, str]:
        """Claim the copy (see `duplicates`) for every recipient not marked done, in one round trip: the queue
        id holding each claim now (ours, or another copy's: then this one is a duplicate). The claim is
        taken before the user and quota checks rather than after them, which saves reading it first; a
        recipient those checks refuse gives it back (`deliver_one`)."""
        keyed = {}
        for recipient, key in claims.items():
            if key is None or marked[recipient]:
                continue
            try:
                mailbox_path(self.settings.mail_root, recipient)
            except UnsafeAddress:
                continue  # refused before any claim would be looked at
            keyed[recipient] = key
        if not keyed:
            return {}
        # With a replicated Redis a transaction, as `DuplicateClaims.claim`: it returns only once a replica
        # holds the claims, and the files are written after it (docs/ha.md).
        async with self._confirmed_writes() as pipe:
            for key in keyed.values():
                self.duplicates.stage_claim(pipe, key, envelope.queue_id)
            previous = await pipe.execute()
        return {
            r: v.decode() if v is not None else envelope.queue_id
            for r, v in zip(keyed, previous, strict=True)
        }

    def _confirmed_writes(self) -> Pipeline:
        """A pipeline for writes that must be confirmed before an effect outside Redis (a file written or
        renamed): a transaction when Redis is replicated, since WAIT follows transactions only
        (`shared.redis_client`); otherwise a plain pipeline, as each of these writes (SET, SET NX GET) is
        atomic alone and `appendfsync always` has it on disk when Redis answers: MULTI/EXEC would add two
        commands and their replies to parse, and nothing else."""
        return self.redis.pipeline(transaction=getattr(self.redis, "replicas", 0) > 0)

    async def _claim_holders(self, claims: dict[str, str | None]) -> dict[str, str]:
        """The queue id holding each recipient's claim, for the recipients that have a claim key."""
        keyed = {r: k for r, k in claims.items() if k is not None}
        if not keyed:
            return {}
        values = await self.redis.mget(list(keyed.values()))
        return {r: v.decode() for r, v in zip(keyed, values, strict=True) if v is not None}

    async def deliver_one(
        self, envelope: Envelope, body: bytes, recipient: str, earlier: Earlier | None = None
    ) -> Outcome:
        """Store for one recipient; `earlier` is what `handle` read for it (read here when not given)."""
        try:
            maildir = mailbox_path(self.settings.mail_root, recipient)
        except UnsafeAddress:
            return _failed(recipient, "5.1.3", "mailbox address not usable as a mailbox name")
        marker = MARKER.format(envelope.queue_id, recipient)
        if earlier is not None and earlier.claim is not None:
            claim: str | None = earlier.claim
        else:
            claim = self._claim_keys(envelope, body, [recipient])[recipient]
        data = stored_message(body, envelope.sender, recipient)
        name = delivery_file_name(envelope, recipient, self.settings.hostname, data)
        try:
            if earlier is None:
                _, marked = await self._body_and_markers(envelope, [recipient])
                holders = await self._claim_holders({recipient: claim})
                earlier = Earlier(marked[recipient], holders.get(recipient))
            if not earlier.marked:
                # Admitted before the Maildir is looked at, so that looking and writing are one trip to
                # the worker thread. (Only a delivery whose marker Redis lost finds its file there.)
                refused = await self._admission(envelope, recipient, maildir, earlier, len(data))
                if refused is not None:
                    if earlier.claimed and claim is not None and refused.duplicate_of is None:
                        # Not stored (no such user, quota, directory down): another copy may be meanwhile.
                        await self.duplicates.release(claim, envelope.queue_id)
                    return refused
                if claim is not None and not earlier.claimed:
                    # Claimed before the first byte is written: a crash from here on leaves the claim with
                    # our queue id, and the redelivery of our entry (which recognizes itself) stores it.
                    holder = await self.duplicates.claim(claim, envelope.queue_id)
                    if holder != envelope.queue_id:
                        return self._suppressed(recipient, holder)
            # The file check backs up the marker (which Redis could lose, e.g. restored from an older
            # backup). The name is the same on every attempt, so it is a stat, whatever the mailbox holds.
            # Marked with a file left in tmp/: the crash came between marker and rename. The file is
            # written afresh (the body is at hand) rather than trusting which leftover is complete.
            tmp = mailbox_files.tmp_name(name)
            try:  # (creates the Maildir if this is its first message)
                state = await asyncio.to_thread(
                    mailbox_files.look_and_write, maildir, name, tmp, data, marked=earlier.marked
                )
            except OSError:
                if claim is not None and not earlier.marked:
                    # We are deferring: let another copy be stored meanwhile rather than be suppressed
                    # in favour of one that may never make it. (Before the marker, so no copy is complete.)
                    await self.duplicates.release(claim, envelope.queue_id)
                raise
            if state.stored:
                log.info("stored by an earlier attempt", extra={"recipient": recipient, "file": state.stored})
                return _delivered(recipient, maildir / state.stored, recovered=True)
            if earlier.marked and not state.in_tmp:
                log.info(
                    "stored by an earlier attempt, since removed by the user", extra={"recipient": recipient}
                )
                return _delivered(recipient, None, recovered=True)
            if not earlier.marked:
                # With a replicated Redis a transaction: it returns once a replica has the marker, before
                # the rename makes the file visible (and fetchable, deletable) in new/ (docs/ha.md).
                async with self._confirmed_writes() as pipe:
                    pipe.set(marker, b"1", ex=self.settings.delivery_marker_ttl_s)
                    await pipe.execute()
            # Returns once new/ is fsynced after the rename (one fsync for the renames of a moment).
            await self.commits.rename(maildir / "tmp" / tmp, maildir / "new" / name)
        except OSError as exc:
            # Disk full, permissions, I/O error: the operator can fix these, so retry rather than bounce.
            log.exception("mailbox write failed", extra={"recipient": recipient})
            return _deferred(recipient, "4.3.0", f"mailbox write failed: {exc.strerror or exc}")
        if earlier.marked:
            log.info("finished an interrupted delivery", extra={"recipient": recipient, "file": name})
            return _delivered(recipient, maildir / "new" / name, recovered=True)
        log.info("stored", extra={"recipient": recipient, "file": name, "size": len(data)})
        return _delivered(recipient, maildir / "new" / name)

    async def _admission(
        self, envelope: Envelope, recipient: str, maildir: Path, earlier: Earlier, size: int
    ) -> Outcome | None:
        """Why this new copy is not stored now (a duplicate, no such user, the quota), or None to store it."""
        # Before asking about the user and the quota: a duplicate must not be deferred or bounced.
        if earlier.claim_holder is not None and earlier.claim_holder != envelope.queue_id:
            return self._suppressed(recipient, earlier.claim_holder)
        try:
            info = await self.auth.recipient(recipient)
        except AuthUnavailable as exc:
            return _deferred(recipient, "4.4.3", f"user directory unavailable: {exc}")
        if not info.deliverable:
            return _failed(recipient, "5.1.1", "mailbox unavailable: no such user")
        if info.quota_bytes is None:
            return None
        if size > info.quota_bytes:
            # No amount of deleting makes room for it: waiting days for nothing helps no one.
            return _failed(
                recipient,
                "5.2.2",
                f"mailbox full: message is {size} bytes, larger than the mailbox quota of "
                f"{info.quota_bytes} bytes",
            )
        used = await self.usage.get(recipient)
        if used is None:
            used = await self.usage.remember(
                recipient, await asyncio.to_thread(mailbox_files.count_usage, maildir)
            )
        if used + size > info.quota_bytes:
            return _deferred(
                recipient,
                "4.2.2",
                f"mailbox full: {used} of {info.quota_bytes} bytes used, message is {size}",
            )
        return None

    def _claim_keys(self, envelope: Envelope, body: bytes, recipients: list[str]) -> dict[str, str | None]:
        """Each recipient's duplicate-suppression key; None when off or the message has no Message-ID."""
        message_id = normalized_message_id(envelope.message_id)
        if not self.settings.delivery_suppress_duplicates or message_id is None:
            return dict.fromkeys(recipients)
        digest = copy_digest(message_id, envelope.sender, body, envelope.prepended)
        return {r: claim_key(digest, r) for r in recipients}

    def _suppressed(self, recipient: str, original_queue_id: str) -> Outcome:
        log.info(
            "duplicate suppressed: a copy with this Message-ID is stored for the recipient under another queue id",
            extra={"recipient": recipient, "original_queue_id": original_queue_id},
        )
        return _duplicate(recipient, original_queue_id)

    async def finish(self, entry: Entry, envelope: Envelope, body: bytes, outcomes: list[Outcome]) -> None:
        """Trace, bounce, defer or release, and acknowledge: all in one MULTI."""
        now = time.time()
        attempts = envelope.attempts + 1
        failed = [o.status for o in outcomes if o.status.state == RecipientState.FAILED]
        deferred = [o.status for o in outcomes if o.status.state == RecipientState.DEFERRED]
        if deferred and self.policy.expired(envelope, now):
            failed += expire(deferred, attempts)
            deferred = []
        delay_notice = bool(deferred) and self.policy.delay_notice_due(envelope, now)
        needs_domains = (failed or delay_notice) and not envelope.is_bounce
        local_domains = await self._domains() if needs_domains else set()

        async with self.redis.pipeline(transaction=True) as pipe:
            for outcome in outcomes:
                if outcome.stored is not None:
                    self._stage_trace(
                        pipe,
                        envelope,
                        "stored",
                        {
                            "recipient": outcome.status.recipient,
                            "mailbox": str(outcome.stored.parent.parent),
                            "file": outcome.stored.name,
                            "recovered": outcome.recovered,
                        },
                    )
                    size, _wire = parse_sizes(outcome.stored.name)
                    # Counted here, with the acknowledgement: a crash before it redelivers the entry, which
                    # finds the file and counts it then.
                    stage_add(pipe, outcome.status.recipient, size or 0)
                if outcome.duplicate_of is not None:
                    self._stage_trace(
                        pipe,
                        envelope,
                        "duplicate-suppressed",
                        {
                            "recipient": outcome.status.recipient,
                            "queue_id": envelope.queue_id,
                            "original_queue_id": outcome.duplicate_of,
                        },
                    )
                    # Done for this recipient: a redelivery (or one that finds the body gone) knows it.
                    pipe.set(
                        MARKER.format(envelope.queue_id, outcome.status.recipient),
                        b"1",
                        ex=self.settings.delivery_marker_ttl_s,
                    )
            if failed:
                bounce = stage_bounce(
                    pipe,
                    envelope,
                    failed,
                    body,
                    self.settings.hostname,
                    local_domains=local_domains,
                    service="delivery",
                )
                log.warning(
                    "recipients failed",
                    extra={
                        "recipients": [s.recipient for s in failed],
                        "statuses": [s.status for s in failed],
                        "bounce_queue_id": bounce.queue_id if bounce else None,
                    },
                )
            if deferred:
                due = self.policy.next_due(envelope, attempts, now)
                retry = envelope.model_copy(
                    update={"recipients": [s.recipient for s in deferred], "attempts": attempts}
                )
                if delay_notice:
                    stage_bounce(
                        pipe,
                        envelope,
                        deferred,
                        body,
                        self.settings.hostname,
                        local_domains=local_domains,
                        delayed=True,
                        will_retry_until=datetime.fromtimestamp(self.policy.expires_at(envelope), UTC),
                        service="delivery",
                    )
                    retry = retry.model_copy(update={"delay_notified": True})
                self.retry.stage_defer(pipe, retry, due, deferred)
                detail = {
                    "recipients": retry.recipients,
                    "statuses": [s.status for s in deferred],
                    "reason": deferred[0].diagnostic,
                    "retry_at": datetime.fromtimestamp(due, UTC).isoformat(),
                }
                self._stage_trace(pipe, envelope, "deferred", detail)
                log.warning("recipients deferred", extra=detail)
            else:
                self.bodies.stage_release(pipe, envelope.body_id, holder(LOCAL_DELIVERY, envelope.queue_id))
            self.consumer.stage_ack(pipe, entry)
            await pipe.execute()
        metrics.finished(envelope, outcomes, failed, deferred, now)
        if deferred:
            self.retry.notify()

    async def _domains(self) -> set[str]:
        """The local domains (routing the bounce); the last known list if the auth service is down."""
        try:
            self._local_domains = {d.lower() for d in await self.auth.domains()}
        except AuthUnavailable:
            if self._local_domains is None:
                raise  # the entry stays pending and is retried
        return self._local_domains

    def _stage_trace(self, pipe: Pipeline, envelope: Envelope, event: str, detail: dict) -> None:
        trace = TraceEvent(
            queue_id=envelope.queue_id,
            message_id=envelope.message_id,
            service="delivery",
            event=event,
            detail=detail,
        )
        stage_publish(pipe, TRACE, trace, maxlen=TRACE_MAXLEN)

    async def _body_missing(self, entry: Entry, envelope: Envelope) -> None:
        # The body is released in the same MULTI as the acknowledgement, so it is only gone early if another
        # consumer already finished this entry (then every recipient has its marker, or was a suppressed
        # duplicate) — or something is wrong.
        if all([await self._finished(envelope, r) for r in dict.fromkeys(envelope.recipients)]):
            log.info("entry already finished by another consumer")
            return
        await self.consumer.dead_letter(entry, f"body {envelope.body_id} missing")

    async def _finished(self, envelope: Envelope, recipient: str) -> bool:
        # Without the body the claim key (a digest of it) is unknown: only the marker can tell.
        return bool(await self.redis.exists(MARKER.format(envelope.queue_id, recipient)))
