"""A lab fault seen end to end: beta's MX answers 451 (`yubin lab fault add`), alpha's relay defers the
message and says so in the trace; the fault removed, the next retry delivers it to bob."""

import json
import time

import pytest
import redis

from shared.models import TraceEvent
from shared.streams import TRACE
from tests.e2e.conftest import Lab
from tests.e2e.mail import messages_with, token, wait_for, wait_for_message, yubin

ALICE = "alice@alpha.test"
BOB = "bob@beta.test"
REPLY = "451 4.3.0 lab fault: try later"
MX_REFRESH_WAIT_S = 1.2  # the MX re-reads its site's faults at most once a second


def trace(lab: Lab, domain: str) -> list[TraceEvent]:
    client = redis.Redis.from_url(lab.site(domain)["redis"])
    try:
        return [TraceEvent.model_validate_json(fields[b"data"]) for _, fields in client.xrange(TRACE)]
    finally:
        client.close()


@pytest.mark.native_only  # reads the sites' trace streams from their Redis
def test_a_4xx_fault_on_betas_mx_defers_then_delivers(lab: Lab) -> None:
    added = yubin(lab, "lab", "fault", "add", "smtp-reply", "--reply", REPLY, "--site", "beta.test",
                  "--expires", "5m", "--json")  # fmt: skip
    fault = json.loads(added.stdout)
    listed = yubin(lab, "lab", "fault", "list", "--site", "beta.test").stdout.decode()
    assert fault["id"] in listed
    try:
        time.sleep(MX_REFRESH_WAIT_S)
        tag = token()
        sent = yubin(lab, "send", "--lab", "--from", ALICE, "--to", BOB, "--subject", tag, "--json", "hi")
        queue_id = json.loads(sent.stdout)["queue_id"]

        def deferred_by_the_fault() -> list[TraceEvent] | None:
            mine = [e for e in trace(lab, "alpha.test") if e.queue_id == queue_id and e.event == "deferred"]
            return [e for e in mine if "lab fault: try later" in json.dumps(e.detail)] or None

        [first, *_] = wait_for("alpha's relay to defer on the fault", deferred_by_the_fault, timeout=60)
        assert first.service == "relay"
        assert "451" in first.detail["recipients"][BOB]
        struck = [e for e in trace(lab, "beta.test") if e.service == "mx" and e.event == "fault"]
        assert any(e.message_id == first.message_id and e.detail["fault_id"] == fault["id"] for e in struck)
        assert not messages_with(lab, BOB, tag)
    finally:
        yubin(lab, "lab", "fault", "remove", fault["id"], "--site", "beta.test")
    assert "no faults" in yubin(lab, "lab", "fault", "list", "--site", "beta.test").stdout.decode()
    wait_for_message(lab, BOB, tag, timeout=60)
    delivered = [e for e in trace(lab, "alpha.test") if e.queue_id == queue_id and e.event == "delivered"]
    assert delivered
