"""Which message a Maildir file is, for POP3's trace events: the queue id from our Received field (only if
it matches the file's name) and the Message-ID, from the header alone."""

from pathlib import Path

from services.pop3.trace import HEADER_MAX, MessageIds, ids_from_head, read_ids
from shared.maildir import delivery_unique, maildir_name

USER = "bob@beta.test"
QUEUE_ID = "Q7f3a9c2e1b"
OTHER = "Q0000other1"


def name_for(queue_id: str, address: str = USER) -> str:
    return maildir_name(delivery_unique(queue_id, address), "mx.beta.test", 100, 104, 1_700_000_000)


def received(queue_id: str) -> bytes:
    return (
        b"Received: from mx.alpha.test (mx.alpha.test [127.0.0.1])\n"
        b"\tby mx.beta.test (Yubin mx)\n"
        b"\twith ESMTP id " + queue_id.encode() + b";\n"
        b"\tSat, 28 Nov 2026 09:00:00 +0000\n"
    )


def test_queue_id_and_message_id_from_a_folded_header() -> None:
    head = b"Return-Path: <a@alpha.test>\n" + received(QUEUE_ID) + b"Message-ID:\n <x@alpha.test>\n\nbody\n"
    assert ids_from_head(head, name_for(QUEUE_ID), USER) == MessageIds(QUEUE_ID, "<x@alpha.test>")


def test_field_names_in_any_case_and_crlf_line_ends() -> None:
    head = received(QUEUE_ID).replace(b"Received", b"RECEIVED").replace(b"\n", b"\r\n")
    head += b"message-id: <y@alpha.test>\r\n\r\n"
    assert ids_from_head(head, name_for(QUEUE_ID), USER) == MessageIds(QUEUE_ID, "<y@alpha.test>")


def test_a_forged_received_field_names_no_other_message() -> None:
    """A sender's Received field naming another message's queue id does not match this file's name."""
    head = received(OTHER) + received(QUEUE_ID) + b"\n"
    assert ids_from_head(head, name_for(QUEUE_ID), USER).queue_id == QUEUE_ID
    assert ids_from_head(received(OTHER) + b"\n", name_for(QUEUE_ID), USER).queue_id is None
    # Another mailbox's copy of the same message has another name.
    assert (
        ids_from_head(received(QUEUE_ID) + b"\n", name_for(QUEUE_ID, "eve@beta.test"), USER).queue_id is None
    )


def test_only_the_header_counts() -> None:
    body = received(QUEUE_ID) + b"Message-ID: <in-body@alpha.test>\n"
    assert ids_from_head(b"Subject: hi\n\n" + body, name_for(QUEUE_ID), USER) == MessageIds()
    # As for the email package, a line that is neither a field nor a continuation starts the body.
    assert ids_from_head(b"Subject: hi\nnot a field\n" + body, name_for(QUEUE_ID), USER) == MessageIds()
    # The first Message-ID field is the one, even when empty.
    assert ids_from_head(b"Message-ID:\nMessage-ID: <2@x>\n\n", name_for(QUEUE_ID), USER) == MessageIds()
    # A header longer than HEADER_MAX: what lies beyond is not read.
    long_header = b"X-Filler: " + b"x" * HEADER_MAX + b"\n" + received(QUEUE_ID) + b"\n"
    assert ids_from_head(long_header, name_for(QUEUE_ID), USER) == MessageIds()


def test_read_ids_reads_the_file_and_tolerates_a_missing_one(tmp_path: Path) -> None:
    path = tmp_path / name_for(QUEUE_ID)
    path.write_bytes(received(QUEUE_ID) + b"Message-ID: <z@alpha.test>\n\nbody\n")
    assert read_ids(path, USER) == MessageIds(QUEUE_ID, "<z@alpha.test>")
    assert read_ids(tmp_path / "gone", USER) == MessageIds()
