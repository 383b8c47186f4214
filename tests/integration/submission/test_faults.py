"""Lab faults on the MX (services/submission/fault_hook.py): a real MX process, faults added through the
real admin API, real SMTP clients (smtplib, raw sockets)."""

import json
import smtplib
import socket
import time
from collections.abc import Iterator

import pytest
import redis

from shared.streams import LOCAL_DELIVERY, TRACE
from tests.integration.submission.site import DOMAIN, RawSmtp, Reception, Site

USER = f"faulted@{DOMAIN}"
SENDER = "someone@remote.example"
MESSAGE_ID = "<fault-test@remote.example>"
MESSAGE = (
    f"From: {SENDER}\r\nTo: {USER}\r\nSubject: faults\r\nMessage-ID: {MESSAGE_ID}\r\n\r\nHello.\r\n"
).encode()
# The MX re-reads the site's faults at most once a second (FaultHook.refresh_s): a session that starts
# this long after a change sees it.
REFRESH_WAIT_S = 1.2


@pytest.fixture(scope="module")
def mx(site: Site) -> Reception:
    site.add_user(USER)
    return site.start("mx")


@pytest.fixture
def faults(site: Site, mx: Reception, clean_queues: redis.Redis) -> Iterator["Faults"]:
    tool = Faults(site)
    yield tool
    tool.clear()


class Faults:
    def __init__(self, site: Site) -> None:
        self.site = site

    def add(self, **body: object) -> dict:
        response = self.site.auth.admin.post("/v1/faults", json={"expires_in_s": 600, **body})
        assert response.status_code == 201, response.text
        time.sleep(REFRESH_WAIT_S)
        return response.json()

    def clear(self) -> None:
        for fault in self.site.auth.admin.get("/v1/faults").json()["faults"]:
            self.site.auth.admin.delete(f"/v1/faults/{fault['id']}")
        time.sleep(REFRESH_WAIT_S)


def smtp(mx: Reception) -> smtplib.SMTP:
    return smtplib.SMTP(mx.host, mx.port, local_hostname="client.remote.example", timeout=10)


def fault_events(client: redis.Redis) -> list[dict]:
    events = [json.loads(fields[b"data"]) for _, fields in client.xrange(TRACE)]
    return [e for e in events if e["service"] == "mx" and e["event"] == "fault"]


def test_a_4xx_at_data_refuses_the_message_and_stores_nothing(
    faults: Faults, mx: Reception, site: Site
) -> None:
    fault = faults.add(kind="smtp-reply", reply="451 4.3.0 lab fault", stage="data")
    with smtp(mx) as client, pytest.raises(smtplib.SMTPDataError) as refused:
        client.sendmail(SENDER, [USER], MESSAGE)
    assert (refused.value.smtp_code, refused.value.smtp_error) == (451, b"4.3.0 lab fault")
    redis_client = site.client()
    assert redis_client.xlen(LOCAL_DELIVERY) == 0
    [event] = fault_events(redis_client)
    assert event["message_id"] == MESSAGE_ID
    assert event["detail"]["fault_id"] == fault["id"]
    assert event["detail"]["sender"] == SENDER and event["detail"]["recipients"] == [USER]


def test_a_5xx_at_rcpt_refuses_the_recipient(faults: Faults, mx: Reception) -> None:
    faults.add(kind="smtp-reply", reply="550 5.1.1 lab fault: no such user", stage="rcpt", share=1)
    with smtp(mx) as client, pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        client.sendmail(SENDER, [USER], MESSAGE)
    assert refused.value.recipients[USER][0] == 550


def test_share_zero_never_strikes(faults: Faults, mx: Reception, site: Site) -> None:
    never = faults.add(kind="smtp-reply", reply="554 5.3.0 never", stage="mail", share=0)
    always = faults.add(kind="smtp-reply", reply="451 4.3.0 always", stage="data", share=1)
    for _ in range(5):
        with smtp(mx) as client:
            client.ehlo()
            assert client.mail(SENDER)[0] == 250
            assert client.rcpt(USER)[0] == 250
            assert client.data(MESSAGE)[0] == 451
    assert site.client().xlen(LOCAL_DELIVERY) == 0
    struck = {event["detail"]["fault_id"] for event in fault_events(site.client())}
    assert struck == {always["id"]} and never["id"] not in struck


def test_a_refusing_greeting_at_connect(faults: Faults, mx: Reception) -> None:
    faults.add(kind="smtp-reply", reply="421 4.3.2 lab fault: go away", stage="connect")
    with RawSmtp(mx.host, mx.port) as raw:
        assert raw.reply() == "421 4.3.2 lab fault: go away"
        assert raw.at_eof()


def test_drop_at_mail_closes_without_a_reply(faults: Faults, mx: Reception) -> None:
    faults.add(kind="drop", stage="mail")
    with RawSmtp(mx.host, mx.port) as raw:
        assert raw.reply().startswith("220 ")
        assert raw.command("EHLO client.remote.example").startswith("250")
        assert raw.command(f"MAIL FROM:<{SENDER}>") == ""  # EOF, no reply line
        assert raw.at_eof()


def test_drop_after_data_keeps_nothing(faults: Faults, mx: Reception, site: Site) -> None:
    faults.add(kind="drop")  # stage: data by default
    with smtp(mx) as client, pytest.raises(smtplib.SMTPServerDisconnected):
        client.sendmail(SENDER, [USER], MESSAGE)
    assert site.client().xlen(LOCAL_DELIVERY) == 0


def test_delay_holds_the_reply_back_then_goes_on(faults: Faults, mx: Reception, site: Site) -> None:
    faults.add(kind="delay", delay_s=3, stage="mail")
    with RawSmtp(mx.host, mx.port) as raw:
        raw.reply()
        raw.command("EHLO client.remote.example")
        raw.send(f"MAIL FROM:<{SENDER}>\r\n".encode())
        raw.sock.settimeout(1)
        with pytest.raises(socket.timeout):
            raw.read_line()  # held back: nothing yet
        raw.sock.settimeout(10)
        assert raw.reply().startswith("250 ")
        assert raw.command(f"RCPT TO:<{USER}>").startswith("250 ")
    [event] = fault_events(site.client())
    assert event["detail"]["kind"] == "delay" and event["detail"]["delay_s"] == 3


def test_the_submission_role_has_no_faults(faults: Faults, mx: Reception, site: Site) -> None:
    submission = site.start("submission")
    faults.add(kind="smtp-reply", reply="554 5.3.0 lab fault", stage="connect")
    with RawSmtp(mx.host, mx.port) as raw:
        assert raw.reply() == "554 5.3.0 lab fault"
    with RawSmtp(submission.host, submission.port) as raw:
        assert raw.reply().startswith("220 ")


def test_an_expired_fault_stops_striking(faults: Faults, mx: Reception) -> None:
    # add() waits past the MX's refresh, and by then the first fault has expired.
    faults.add(kind="smtp-reply", reply="451 4.3.0 short-lived", stage="mail", expires_in_s=1)
    faults.add(kind="smtp-reply", reply="550 5.1.1 long-lived", stage="rcpt", expires_in_s=600)
    with smtp(mx) as client:
        client.ehlo()
        assert client.mail(SENDER)[0] == 250
        assert client.rcpt(USER) == (550, b"5.1.1 long-lived")
