"""Mail that cannot be delivered comes back to alice as a DSN (RFC 3464); mail to a dead host waits."""

import json

import pytest
import redis

from shared.models import TraceEvent
from shared.streams import TRACE
from tests.e2e.conftest import Lab
from tests.e2e.mail import messages_with, parse, token, wait_for, wait_for_message, yubin

ALICE = "alice@alpha.test"
RETRY_KEY = "yubin:relay:retry"  # services/relay/retry.py


@pytest.mark.parametrize(
    ("recipient", "status_prefix"),
    [
        ("someone@nullmx.test", "5."),  # null MX (RFC 7505): 5.1.10
        ("someone@nomx.test", "5."),  # neither MX nor address
        ("nobody@beta.test", "5.1.1"),  # beta's MX refuses an unknown user
    ],
)
def test_undeliverable_mail_bounces_to_the_sender(lab: Lab, recipient: str, status_prefix: str) -> None:
    tag = token()
    yubin(lab, "send", "--lab", "--from", ALICE, "--to", recipient, "--subject", f"bounce {tag}", "hello?")
    [dsn] = wait_for_message(lab, ALICE, tag)
    report = parse(dsn)
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    assert report["Return-Path"] in (None, "<>"), "a bounce is sent from the null sender"
    status = next(p for p in report.walk() if p.get_content_type() == "message/delivery-status")
    text = status.as_string()
    assert recipient in text
    assert "Action: failed" in text
    assert f"Status: {status_prefix}" in text
    messages_with(lab, ALICE, tag, delete=True)


@pytest.mark.native_only  # reads alpha's Redis (the retry set and the trace stream)
def test_mail_to_a_host_that_is_down_is_retried_not_lost(lab: Lab) -> None:
    tag = token()
    sent = yubin(
        lab, "send", "--lab", "--from", ALICE, "--to", "someone@down.test", "--subject", tag, "--json", "hi"
    )
    queue_id = json.loads(sent.stdout)["queue_id"]
    client = redis.Redis.from_url(lab.site("alpha.test")["redis"])
    try:

        def deferrals() -> list[TraceEvent] | None:
            events = [TraceEvent.model_validate_json(fields[b"data"]) for _, fields in client.xrange(TRACE)]
            mine = [e for e in events if e.queue_id == queue_id and e.event == "deferred"]
            return mine if len(mine) >= 2 else None

        # The retry schedule of the e2e lab is 1 s, 2 s: two deferrals show a retry happened.
        events = wait_for("two deferrals of the message to down.test", deferrals, timeout=30)
        assert all(e.service == "relay" for e in events)
        queued = [json.loads(member) for member in client.zrange(RETRY_KEY, 0, -1)]
        assert any(envelope["queue_id"] == queue_id for envelope in queued), "still queued for retry"
        assert not messages_with(lab, ALICE, tag), "no bounce: it is not given up"
    finally:
        client.close()
