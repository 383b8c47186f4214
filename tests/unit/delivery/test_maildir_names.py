"""The Maildir naming and line-ending contract between delivery and POP3 (shared.maildir)."""

from pathlib import Path

import pytest

from shared.maildir import (
    UnsafeAddress,
    delivery_unique,
    mailbox_path,
    maildir_name,
    parse_sizes,
    to_disk,
    to_wire,
    unique_of,
    wire_size,
)


def test_name_carries_time_unique_host_and_both_sizes() -> None:
    name = maildir_name("Yabc", "mx.alpha.test", 120, 125, when=1764166625.9)
    assert name == "1764166625.Yabc.mx.alpha.test,S=120,W=125"
    assert unique_of(name) == "Yabc"
    assert parse_sizes(name) == (120, 125)


def test_host_characters_that_would_break_the_name_are_escaped() -> None:
    name = maildir_name("Yabc", "odd/host:name,x", 1, 2, when=1)
    assert name == r"1.Yabc.odd\057host\072name\054x,S=1,W=2"
    assert parse_sizes(name) == (1, 2)


def test_sizes_are_read_past_the_info_a_reader_adds_in_cur() -> None:
    assert parse_sizes("1.Yabc.host,S=10,W=12:2,S") == (10, 12)
    assert parse_sizes("1.Yabc.host,W=12,S=10:2,RS") == (10, 12)


def test_names_without_sizes_say_so() -> None:
    assert parse_sizes("1234.M5P6.host") == (None, None)
    assert parse_sizes("1234.M5P6.host,S=9:2,") == (9, None)
    assert parse_sizes("1234.M5P6.host,S=x") == (None, None)


def test_unique_part_is_stable_per_queue_id_and_recipient() -> None:
    first = delivery_unique("18C2F0A1B2C3D4E5F6A7B8", "ann@alpha.test")
    assert first == delivery_unique("18C2F0A1B2C3D4E5F6A7B8", "ann@alpha.test")
    assert first != delivery_unique("18C2F0A1B2C3D4E5F6A7B8", "bob@alpha.test")
    assert first != delivery_unique("18C2F0A1B2C3D4E5F6A7B9", "ann@alpha.test")
    assert "." not in first and "," not in first and ":" not in first and "/" not in first


def test_disk_has_lf_and_wire_has_crlf() -> None:
    smtp = "Subject: Grüße\r\n\r\nline one\r\nüber\r\n".encode()
    stored = to_disk(smtp)
    assert stored == "Subject: Grüße\n\nline one\nüber\n".encode()
    assert to_wire(stored) == smtp
    assert wire_size(stored) == len(smtp)


def test_a_message_without_final_line_break_gets_one() -> None:
    assert to_disk(b"Subject: x\r\n\r\nno newline") == b"Subject: x\n\nno newline\n"
    assert to_disk(b"") == b""


def test_mailbox_path_is_unchanged() -> None:
    assert mailbox_path(Path("/m"), "ann@alpha.test") == Path("/m/alpha.test/ann")
    for bad in ("../x@alpha.test", "ann@..", "ann", "a/b@alpha.test", "Ann@alpha.test"):
        with pytest.raises(UnsafeAddress):
            mailbox_path(Path("/m"), bad)
