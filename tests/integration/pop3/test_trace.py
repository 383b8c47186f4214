"""POP3 is part of the journey: listed, retrieved and deleted messages are in the site's trace stream,
with the user, the client address, the Message-ID and the queue id (see services/pop3/trace.py)."""

import time
from collections.abc import Callable
from typing import Any

from shared.models import new_queue_id
from tests.integration.pop3.conftest import Pop3Server, Pop3Site


def stored(queue_id: str, user: str, message_id: str, subject: str, forged: str | None = None) -> bytes:
    """A message as delivery stores it: its trace fields, our MX's Received field, then the message."""
    received = (
        "Received: from client.test (client.test [192.0.2.1])\r\n"
        "\tby mx.alpha.test (Yubin mx)\r\n"
        f"\twith ESMTP id {queue_id};\r\n"
        "\tSat, 28 Nov 2026 09:00:00 +0000\r\n"
    )
    # A Received field the sender wrote below ours, naming another message's queue id.
    below = (
        f"Received: from x by y with SMTP id {forged};\r\n\tSat, 28 Nov 2026 08:00:00 +0000\r\n"
        if forged
        else ""
    )
    return (
        f"Return-Path: <alice@beta.test>\r\nDelivered-To: {user}\r\n{received}{below}"
        f"Message-ID: {message_id}\r\nSubject: {subject}\r\n\r\nbody\r\n"
    ).encode()


def wait_for(found: Callable[[], object], what: str, within_s: float = 30) -> None:
    deadline = time.monotonic() + within_s
    while not found():
        assert time.monotonic() < deadline, f"no {what} after {within_s} s"
        time.sleep(0.05)


def pop3_events(site: Pop3Site, user: str) -> list[dict[str, Any]]:
    events = site.auth.admin.get("/v1/trace", params={"address": user}).json()["events"]
    return [e for e in events if e["service"] == "pop3"]


def test_listed_retrieved_deleted(site: Pop3Site, pop3: Pop3Server, user: str) -> None:
    one, two, three = new_queue_id(), new_queue_id(), new_queue_id()
    site.deliver(user, stored(one, user, "<one@beta.test>", "one"), queue_id=one)
    # A forged Received field naming `one` above the real one cannot tie this file to `one`.
    site.deliver(user, stored(two, user, "<two@beta.test>", "two", forged=one), queue_id=two)
    # A file whose Received field does not match its name (not ours): the queue id stays unknown.
    site.deliver(user, stored(new_queue_id(), user, "<three@beta.test>", "three"), queue_id=three)

    client = pop3.login(user)
    client.list()
    client.uidl()
    client.list()  # listed once per session, not per LIST
    client.retr(1)
    client.top(2, 0)
    client.retr(3)
    client.dele(1)
    client.dele(2)
    client.quit()

    events = pop3_events(site, user)
    assert [(e["event"], e["queue_id"], e["message_id"]) for e in events] == [
        ("listed", one, "<one@beta.test>"),
        ("listed", two, "<two@beta.test>"),
        ("listed", "", "<three@beta.test>"),
        ("retrieved", one, "<one@beta.test>"),
        ("retrieved", two, "<two@beta.test>"),
        ("retrieved", "", "<three@beta.test>"),
        ("deleted", one, "<one@beta.test>"),
        ("deleted", two, "<two@beta.test>"),
    ]
    for e in events:
        assert e["detail"]["user"] == user and e["detail"]["client"] == "127.0.0.1"
    assert [e["detail"]["command"] for e in events if e["event"] == "retrieved"] == ["RETR", "TOP", "RETR"]

    # The next session: message three was retrieved before, so it is not listed again.
    client = pop3.login(user)
    client.list()
    client.quit()
    assert len(pop3_events(site, user)) == len(events)

    # The journey of message one, by its queue id, ends with its deletion.
    journey = site.auth.admin.get("/v1/trace", params={"queue_id": one}).json()["events"]
    assert [e["event"] for e in journey] == ["listed", "retrieved", "deleted"]


def test_a_session_without_quit_deletes_nothing_and_traces_no_deletion(
    site: Pop3Site, pop3: Pop3Server, user: str
) -> None:
    queue_id = new_queue_id()
    site.deliver(user, stored(queue_id, user, "<kept@beta.test>", "kept"), queue_id=queue_id)
    client = pop3.login(user)
    client.retr(1)
    client.dele(1)
    client.close()  # dropped: no UPDATE
    # Events are written within moments of the command, whether or not the session ends well.
    wait_for(lambda: pop3_events(site, user), "the retrieved event")
    # The next session's QUIT writes everything queued before it: still no deletion, the message is kept.
    client = pop3.login(user)
    assert client.stat()[0] == 1
    client.quit()
    assert [e["event"] for e in pop3_events(site, user)] == ["retrieved"]
