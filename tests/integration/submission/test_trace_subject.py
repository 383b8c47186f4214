"""The `accepted` trace event names the message's Subject (decoded, one line), in both roles."""

import smtplib
import ssl

import pytest
import redis

from tests.integration.submission.site import DOMAIN, PASSWORD, Reception, Site, all_envelopes

ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"


@pytest.fixture(scope="module")
def submission(site: Site) -> Reception:
    site.add_user(ALICE)
    site.add_user(BOB)
    return site.start("submission")


@pytest.fixture(scope="module")
def mx(site: Site, submission: Reception) -> Reception:
    return site.start("mx")


def accepted_event(client: redis.Redis) -> dict:
    [trace] = all_envelopes(client)["trace"]
    assert trace["event"] == "accepted"
    return trace


def send_over_mx(mx: Reception, message: bytes) -> None:
    with smtplib.SMTP(mx.host, mx.port, local_hostname="client.remote.example", timeout=10) as smtp:
        smtp.sendmail("someone@remote.example", [BOB], message)


def test_submission_traces_the_decoded_subject(submission: Reception, clean_queues: redis.Redis) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    message = (
        b"From: alice@alpha.test\r\nTo: bob@alpha.test\r\n"
        b"Subject: Re: =?utf-8?b?5pel5pys6Kqe?=\r\n =?utf-8?q?_caf=C3=A9?=\x1b[2J\r\n\r\nHi!\r\n"
    )
    with smtplib.SMTP(submission.host, submission.port, local_hostname="laptop.example", timeout=10) as smtp:
        smtp.starttls(context=context)
        smtp.login(ALICE, PASSWORD)
        smtp.sendmail(ALICE, [BOB], message)
    trace = accepted_event(clean_queues)
    assert trace["service"] == "submission"
    assert trace["detail"]["subject"] == "Re: 日本語 café [2J"


def test_mx_traces_markup_as_text_and_no_subject_as_none(mx: Reception, clean_queues: redis.Redis) -> None:
    subject = '<img src=x onerror="window.__xss2=1">'
    send_over_mx(mx, f"From: x@remote.example\r\nSubject: {subject}\r\n\r\nHello.\r\n".encode())
    trace = accepted_event(clean_queues)
    assert trace["service"] == "mx"
    assert trace["detail"]["subject"] == subject

    clean_queues.delete("yubin:stream:trace")
    send_over_mx(mx, b"From: x@remote.example\r\nTo: bob@alpha.test\r\n\r\nSubject: in the body\r\n")
    assert "subject" not in accepted_event(clean_queues)["detail"]


def test_garbage_subject_is_still_accepted(mx: Reception, clean_queues: redis.Redis) -> None:
    send_over_mx(mx, b"Subject: =?rot13?b?!!!?= =?utf-8?b?/w==?= \xff\r\n\r\nHello.\r\n")
    assert isinstance(accepted_event(clean_queues)["detail"]["subject"], str)


def test_trace_subjects_off(site: Site, mx: Reception, clean_queues: redis.Redis) -> None:
    quiet = site.start("mx", YUBIN_TRACE_SUBJECTS="false")
    send_over_mx(quiet, b"From: x@remote.example\r\nSubject: private\r\n\r\nHello.\r\n")
    assert "subject" not in accepted_event(clean_queues)["detail"]
