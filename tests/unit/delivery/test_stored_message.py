"""The bytes delivery writes: Return-Path and Delivered-To on top, LF line endings, forged Return-Path gone."""

from services.delivery.stored_message import stored_message


def test_trace_headers_are_prepended_and_lines_end_in_lf() -> None:
    body = b"From: a@beta.test\r\nSubject: hi\r\n\r\nHello\r\n"
    assert stored_message(body, "a@beta.test", "ann@alpha.test") == (
        b"Return-Path: <a@beta.test>\nDelivered-To: ann@alpha.test\nFrom: a@beta.test\nSubject: hi\n\nHello\n"
    )


def test_null_sender_is_written_as_angle_brackets() -> None:
    out = stored_message(b"Subject: bounce\r\n\r\nx\r\n", "", "ann@alpha.test")
    assert out.startswith(b"Return-Path: <>\nDelivered-To: ann@alpha.test\n")


def test_a_return_path_from_the_sender_is_removed_with_its_continuation_lines() -> None:
    body = (
        b"Return-Path: <ceo@alpha.test>\r\nFrom: x@beta.test\r\nreturn-path:\r\n <other@alpha.test>\r\n"
        b"Subject: s\r\n\r\nReturn-Path: <in the body stays>\r\n"
    )
    assert stored_message(body, "x@beta.test", "ann@alpha.test") == (
        b"Return-Path: <x@beta.test>\nDelivered-To: ann@alpha.test\n"
        b"From: x@beta.test\nSubject: s\n\nReturn-Path: <in the body stays>\n"
    )


def test_eight_bit_utf8_passes_unchanged() -> None:
    body = "Subject: =?utf-8?q?x?=\r\n\r\nこんにちは, Grüße\r\n".encode()
    out = stored_message(body, "a@beta.test", "ann@alpha.test")
    assert out.endswith("\n\nこんにちは, Grüße\n".encode())


def test_a_message_without_header_section_is_kept() -> None:
    out = stored_message(b"\r\nReturn-Path: <body>\r\n", "a@beta.test", "ann@alpha.test")
    assert out == b"Return-Path: <a@beta.test>\nDelivered-To: ann@alpha.test\n\nReturn-Path: <body>\n"
