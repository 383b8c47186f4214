"""One copy per Message-ID and recipient: a copy that comes back under a new queue id is not stored again.

The copies are what a sending relay produces when it dies between our 250 and its own bookkeeping: the same
message, the same Message-ID, accepted by our MX once more under a new queue id.
"""

import smtplib
from pathlib import Path

from redis.asyncio import Redis

from services.delivery import mailbox_files
from services.delivery.duplicates import DuplicateClaims, claim_key, copy_digest, normalized_message_id
from services.delivery.handler import delivery_file_name
from services.delivery.stored_message import stored_message
from shared.bus import Consumer
from shared.config import BusSettings
from shared.maildir import delivery_unique, mailbox_path, unique_of
from shared.models import Envelope
from shared.streams import DELIVERY_GROUP, LOCAL_DELIVERY
from tests.integration.delivery.mailboxes import body_released, files, pending, send, trace_events, wait_until
from tests.integration.submission.site import base_env, start_reception

BODY = b"From: carol@beta.test\r\nSubject: twice\r\nMessage-ID: <twice@beta.test>\r\n\r\nsent twice\r\n"
ANN = "ann@alpha.test"
BOB = "bob@alpha.test"


def stored_queue_ids(mail_root: Path, address: str, envelopes: list[Envelope]) -> list[str]:
    """The queue ids of `envelopes` that have a file in the address's Maildir (one entry per file)."""
    by_unique = {delivery_unique(e.queue_id, address): e.queue_id for e in envelopes}
    return sorted(by_unique[unique_of(n)] for n in files(mail_root, address) if unique_of(n) in by_unique)


async def all_released(redis: Redis, envelopes: list[Envelope]) -> None:
    async def released() -> bool:
        return all([await body_released(redis, e) for e in envelopes])

    await wait_until(released, "every envelope finished")
    assert await pending(redis) == 0


async def test_a_copy_under_another_queue_id_is_reported_delivered_and_not_stored(
    site, start_delivery, redis: Redis, mail_root: Path
) -> None:
    start_delivery()
    first = await send(redis, BODY, "carol@beta.test", [ANN], message_id="<twice@beta.test>")
    await all_released(redis, [first])
    # The user is now over quota: a duplicate must still be recognized, not deferred for lack of space.
    site.patch_user(ANN, quota_bytes=1)
    # The same Message-ID, written differently (a comment, folding white space): still the same message.
    copy = await send(redis, BODY, "carol@beta.test", [ANN], message_id="(resent) < twice@beta.test >")
    await all_released(redis, [copy])

    assert stored_queue_ids(mail_root, ANN, [first, copy]) == [first.queue_id]
    assert len(files(mail_root, ANN)) == 1
    [suppressed] = await trace_events(redis, "duplicate-suppressed")
    assert suppressed.queue_id == copy.queue_id
    assert suppressed.detail == {
        "recipient": ANN,
        "queue_id": copy.queue_id,
        "original_queue_id": first.queue_id,
    }
    assert [e.queue_id for e in await trace_events(redis, "stored")] == [first.queue_id]
    assert await trace_events(redis, "deferred") == []
    assert await trace_events(redis, "bounce") == []


async def test_copies_delivered_at_the_same_moment_are_stored_once(
    start_delivery, redis: Redis, mail_root: Path
) -> None:
    # Three copies of each of ten messages, all queued before two replicas start working on them at once.
    copies = {
        f"<m{n}@beta.test>": [
            await send(redis, BODY, "carol@beta.test", [ANN], message_id=f"<m{n}@beta.test>")
            for _ in range(3)
        ]
        for n in range(10)
    }
    everything = [e for group in copies.values() for e in group]
    start_delivery(YUBIN_CONCURRENCY="16")
    start_delivery(YUBIN_CONCURRENCY="16")
    await all_released(redis, everything)

    assert len(files(mail_root, ANN)) == 10
    for message_id, group in copies.items():
        assert len(stored_queue_ids(mail_root, ANN, group)) == 1, message_id
    assert len(await trace_events(redis, "duplicate-suppressed")) == 20


async def test_other_recipients_other_message_ids_and_no_message_id_are_all_stored(
    start_delivery, redis: Redis, mail_root: Path
) -> None:
    start_delivery()
    to_ann = await send(redis, BODY, "carol@beta.test", [ANN], message_id="<same@beta.test>")
    to_bob = await send(redis, BODY, "carol@beta.test", [BOB], message_id="<same@beta.test>")
    other_id = await send(redis, BODY, "carol@beta.test", [ANN], message_id="<other@beta.test>")
    no_id = [await send(redis, BODY, "carol@beta.test", [ANN], message_id=None) for _ in range(2)]
    await all_released(redis, [to_ann, to_bob, other_id, *no_id])

    everything = [to_ann, to_bob, other_id, *no_id]
    assert stored_queue_ids(mail_root, ANN, everything) == sorted(
        e.queue_id for e in [to_ann, other_id, *no_id]
    )
    assert stored_queue_ids(mail_root, BOB, everything) == [to_bob.queue_id]
    assert await trace_events(redis, "duplicate-suppressed") == []


async def test_with_suppression_turned_off_every_copy_is_stored(
    start_delivery, redis: Redis, mail_root: Path
) -> None:
    start_delivery(YUBIN_DELIVERY_SUPPRESS_DUPLICATES="false")
    copies = [await send(redis, BODY, "carol@beta.test", [ANN], message_id="<twice@beta.test>") for _ in "ab"]
    await all_released(redis, copies)

    assert stored_queue_ids(mail_root, ANN, copies) == sorted(e.queue_id for e in copies)
    assert await trace_events(redis, "duplicate-suppressed") == []


async def first_attempt_until_claimed(
    redis: Redis, mail_root: Path, envelope: Envelope, *, half: bool
) -> None:
    """What the service's first attempt does for ann up to a crash right after the claim (or half-way
    through the write, `half`), with the functions the service uses."""
    message_id = normalized_message_id(envelope.message_id)
    assert message_id is not None
    claims = DuplicateClaims(redis, ttl_s=3600)
    key = claim_key(copy_digest(message_id, envelope.sender, BODY, envelope.prepended), ANN)
    assert await claims.claim(key, envelope.queue_id) == envelope.queue_id
    if half:
        maildir = mailbox_path(mail_root, ANN)
        data = stored_message(BODY, envelope.sender, ANN)
        name = delivery_file_name(envelope, ANN, "mx.alpha.test", data)
        mailbox_files.ensure_maildir(maildir)
        (maildir / "tmp" / mailbox_files.tmp_name(name)).write_bytes(data[:10])


async def test_a_crash_after_the_claim_neither_loses_the_message_nor_lets_a_copy_in(
    start_delivery, redis: Redis, mail_root: Path
) -> None:
    consumer = Consumer(redis, LOCAL_DELIVERY, DELIVERY_GROUP, BusSettings(), name="crashed")
    await consumer.ensure_group()
    claimed = await send(redis, BODY, "carol@beta.test", [ANN], message_id="<claimed@beta.test>")
    half_written = await send(redis, BODY, "carol@beta.test", [ANN], message_id="<half@beta.test>")
    assert len(await consumer.read_new(10, block_ms=100)) == 2  # now pending under a consumer that died
    await first_attempt_until_claimed(redis, mail_root, claimed, half=False)
    await first_attempt_until_claimed(redis, mail_root, half_written, half=True)
    # Meanwhile the sending relay, which also crashed, sends one of them again: a new queue id.
    copy = await send(redis, BODY, "carol@beta.test", [ANN], message_id="<half@beta.test>")

    start_delivery()  # reads the copy at once, reclaims the crashed entries after YUBIN_BUS_CLAIM_IDLE_MS
    await all_released(redis, [claimed, half_written, copy])

    everything = [claimed, half_written, copy]
    assert stored_queue_ids(mail_root, ANN, everything) == sorted([claimed.queue_id, half_written.queue_id])
    assert len(files(mail_root, ANN)) == 2
    assert files(mail_root, ANN, "tmp") == []
    [suppressed] = await trace_events(redis, "duplicate-suppressed")
    assert suppressed.detail["queue_id"] == copy.queue_id
    assert suppressed.detail["original_queue_id"] == half_written.queue_id


async def test_a_message_id_used_first_by_someone_else_does_not_make_the_real_message_vanish(
    start_delivery, redis: Redis, mail_root: Path
) -> None:
    start_delivery()
    # Mallory knows (or guesses) the Message-ID of a message carol is about to send ann.
    forged_body = BODY.replace(b"sent twice", b"nothing to see")
    forged = await send(redis, forged_body, "mallory@beta.test", [ANN], message_id="<twice@beta.test>")
    same_body_other_sender = await send(
        redis, BODY, "mallory@beta.test", [ANN], message_id="<twice@beta.test>"
    )
    await all_released(redis, [forged, same_body_other_sender])
    real = await send(redis, BODY, "carol@beta.test", [ANN], message_id="<twice@beta.test>")
    await all_released(redis, [real])

    everything = [forged, same_body_other_sender, real]
    assert stored_queue_ids(mail_root, ANN, everything) == sorted(e.queue_id for e in everything)
    assert await trace_events(redis, "duplicate-suppressed") == []


async def test_a_real_redelivery_over_smtp_is_still_suppressed(
    site, start_delivery, service_factory, redis: Redis, mail_root: Path
) -> None:
    """The sending MTA sends the same message twice; our MX accepts each under a new queue id with its own
    Received field on top. What the sender sent is the same, so the second copy is suppressed."""
    mx = start_reception(service_factory, "mx", base_env(site, site.redis_url, None))
    start_delivery()
    message = b"Received: from client (sender's own, written once)\r\n" + BODY
    queue_ids = []
    for _ in range(2):
        with smtplib.SMTP(mx.host, mx.port, timeout=20) as smtp:
            smtp.ehlo("mx.beta.test")
            smtp.mail("carol@beta.test")
            smtp.rcpt(ANN)
            code, reply = smtp.data(message)
            assert code == 250, reply
            queue_ids.append(reply.decode().rsplit(" ", 1)[-1])

    async def both_finished() -> bool:
        return (
            len(await trace_events(redis, "stored")) + len(await trace_events(redis, "duplicate-suppressed"))
            == 2
        )

    await wait_until(both_finished, "both copies handled")
    [name] = files(mail_root, ANN)
    [suppressed] = await trace_events(redis, "duplicate-suppressed")
    # (Whichever copy the delivery took up first is the one stored.)
    stored_id = suppressed.detail["original_queue_id"]
    assert sorted([suppressed.queue_id, stored_id]) == sorted(queue_ids)
    assert unique_of(name) == delivery_unique(stored_id, ANN)


async def test_a_copy_refused_for_the_recipient_holds_no_claim_that_would_suppress_a_later_one(
    site, start_delivery, redis: Redis, mail_root: Path
) -> None:
    """The claim is taken before the user and quota checks (one round trip for both); a recipient they
    refuse gives it back, so a copy sent again once the mailbox has room is not taken for a duplicate."""
    site.patch_user(ANN, quota_bytes=1)  # the message is larger than the whole quota: refused for good
    start_delivery()
    refused = await send(redis, BODY, "carol@beta.test", [ANN, BOB], message_id="<refused@beta.test>")
    await all_released(redis, [refused])

    assert stored_queue_ids(mail_root, BOB, [refused]) == [refused.queue_id]
    assert stored_queue_ids(mail_root, ANN, [refused]) == []
    digest = copy_digest("refused@beta.test", refused.sender, BODY, refused.prepended)
    assert await redis.get(claim_key(digest, BOB)) == refused.queue_id.encode()
    assert await redis.get(claim_key(digest, ANN)) is None
