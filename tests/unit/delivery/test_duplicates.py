"""The duplicate-suppression key: which Message-IDs count as the same, and what the Redis key looks like."""

import hashlib

import pytest

from services.delivery.duplicates import claim_key, copy_digest, normalized_message_id


@pytest.mark.parametrize(
    "value",
    ["<a.b@example.test>", " <a.b@example.test> ", "(a comment) <a.b@example.test>", "< a.b@example.test\t>"],
)
def test_the_same_message_id_written_differently_is_the_same(value: str) -> None:
    assert normalized_message_id(value) == "a.b@example.test"


def test_case_and_content_matter() -> None:
    # The left part is the sender's opaque token: A.B and a.b may be different messages.
    assert normalized_message_id("<A.B@example.test>") != normalized_message_id("<a.b@example.test>")
    assert normalized_message_id("<1@example.test>") != normalized_message_id("<2@example.test>")


@pytest.mark.parametrize("value", [None, "", "   ", "<>", "< >"])
def test_no_message_id_means_no_suppression(value: str | None) -> None:
    assert normalized_message_id(value) is None


def test_without_brackets_the_whole_value_counts() -> None:
    assert normalized_message_id("bare@example.test") == "bare@example.test"


def test_the_key_is_bound_to_message_id_sender_and_body_as_sent() -> None:
    body = b"Received: from us\r\n\tby mx id 1;\r\nSubject: hi\r\n\r\nhello\r\n"
    prepended = body.index(b"Subject")
    digest = copy_digest("a.b@example.test", "carol@beta.test", body, prepended)
    expected = hashlib.sha256(b"a.b@example.test\0carol@beta.test\0Subject: hi\r\n\r\nhello\r\n").hexdigest()
    assert digest == expected
    assert claim_key(digest, "ann@alpha.test") == f"yubin:delivery:copy:{digest}:ann@alpha.test"
    # Another acceptance of the same message: only our own Received field differs.
    again = b"Received: from us\r\n\tby mx id 2222;\r\n" + body[prepended:]
    assert (
        copy_digest("a.b@example.test", "carol@beta.test", again, len(again) - len(body[prepended:]))
        == digest
    )
    # Anything the sender controls makes another message.
    assert copy_digest("a.b@example.test", "mallory@beta.test", body, prepended) != digest
    assert copy_digest("a.b@example.test", "carol@beta.test", body + b"x", prepended) != digest
    assert copy_digest("a.b@example.test", "carol@beta.test", body.replace(b"hello", b"hellO"), 0) != digest


def test_a_resubmission_through_another_site_is_the_same_message() -> None:
    """A client that resends after a lost 250 sends the same bytes, but the sending site stamps each
    submission with its own Received (and the receiving MX with another): the trace fields at the top,
    folded lines and all, are not part of what identifies the message (found by `make chaos`)."""
    author = b"From: bea@beta.test\r\nMessage-ID: <m@beta.test>\r\nDate: Sat, 28 Nov 2026\r\n\r\nhi\r\n"

    def through(submission_id: bytes, mx_id: bytes) -> bytes:
        return (
            b"Received: from mx.beta.test\r\n\tby mx.alpha.test (Yubin mx)\r\n\twith ESMTPS id "
            + mx_id
            + b";\r\n"
            b"Received: from [127.0.0.1]\r\n\tby mx.beta.test (Yubin submission)\r\n\twith ESMTPA id "
            + submission_id
            + b";\r\n"
            + author
        )

    first, second = through(b"1A", b"2B"), through(b"3C", b"4D")
    assert copy_digest("m@beta.test", "bea@beta.test", first, 0) == copy_digest(
        "m@beta.test", "bea@beta.test", second, 0
    )
    # Only the trace fields at the top: the same field lower down is the author's and counts.
    moved = author.replace(b"\r\n\r\n", b"\r\nReceived: by someone\r\n\r\n")
    assert copy_digest("m@beta.test", "bea@beta.test", moved, 0) != copy_digest(
        "m@beta.test", "bea@beta.test", first, 0
    )
