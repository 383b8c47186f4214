"""Local delivery follows the one retry policy (shared.retry_queue): one "delayed" DSN to the sender."""

import email
from email import policy
from pathlib import Path

from redis.asyncio import Redis

from shared.body_store import RedisBodyStore
from shared.dsn import DELAYED_SUBJECT
from shared.streams import OUTBOUND
from tests.integration.delivery.mailboxes import files, send, stream_envelopes, trace_events, wait_until

BODY = b"From: carol@beta.test\r\nSubject: big\r\n\r\n" + b"x" * 200 + b"\r\n"


async def dsn_parts(redis: Redis) -> list[tuple[str, dict[str, str]]]:
    """(Subject, the recipient block's fields) of each DSN queued for carol (she is at beta.test: OUTBOUND)."""
    found = []
    for notice in await stream_envelopes(redis, OUTBOUND):
        raw = await RedisBodyStore(redis).get(notice.body_id)
        report = email.message_from_bytes(raw or b"", policy=policy.default)
        status = next(p for p in report.iter_parts() if p.get_content_type() == "message/delivery-status")
        _, block = status.get_payload()
        found.append((report["Subject"], {k: str(v) for k, v in block.items()}))
    return found


async def test_one_delay_notice_while_the_recipient_is_retried(
    start_delivery, site, redis: Redis, mail_root: Path
) -> None:
    # Room for one copy, not two: the second waits for room (a message larger than the whole quota would
    # bounce at once instead, see test_delivery_service).
    site.patch_user("ann@alpha.test", quota_bytes=len(BODY) + 200)
    start_delivery(YUBIN_DELIVERY_DELAY_WARNING_S="0.3")  # lifetime 60 s: no expiry within the test
    await send(redis, BODY, "carol@beta.test", ["ann@alpha.test"])

    async def first_stored() -> bool:
        return len(files(mail_root, "ann@alpha.test")) == 1

    await wait_until(first_stored, "the first copy stored")
    await send(redis, BODY, "carol@beta.test", ["ann@alpha.test"])

    async def notice() -> bool:
        return len(await stream_envelopes(redis, OUTBOUND)) >= 1

    await wait_until(notice, "the delayed DSN")
    retries_then = len(await trace_events(redis, "deferred"))

    async def three_more_retries() -> bool:
        return len(await trace_events(redis, "deferred")) >= retries_then + 3

    await wait_until(three_more_retries, "three more retries after the notice")
    [(subject, delayed)] = await dsn_parts(redis)  # one warning only, however many retries
    assert subject == DELAYED_SUBJECT
    assert (delayed["Action"], delayed["Status"]) == ("delayed", "4.2.2")
    assert "Will-Retry-Until" in delayed
    assert "mailbox full" in delayed["Diagnostic-Code"]
