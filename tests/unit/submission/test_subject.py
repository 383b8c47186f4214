"""The Subject an `accepted` trace event carries: decoded, one clean line, bounded, never an error."""

import json
import random

import pytest

from services.submission.subject import MAX_SUBJECT, subject_of


def message(*fields: bytes, body: bytes = b"Hello.\r\n") -> bytes:
    return b"".join(f + b"\r\n" for f in fields) + b"\r\n" + body


def test_plain_subject() -> None:
    assert subject_of(message(b"From: a@alpha.test", b"Subject: Lunch at noon", b"To: b@beta.test")) == (
        "Lunch at noon"
    )


def test_field_name_in_any_case_and_first_field() -> None:
    assert subject_of(message(b"SUBJECT: shouting")) == "shouting"
    assert subject_of(message(b"subject:tight")) == "tight"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"=?utf-8?b?5pel5pys6Kqe44Gu5Lu25ZCN?=", "日本語の件名"),
        (b"=?UTF-8?Q?caf=C3=A9?= =?utf-8?q?_au_lait?=", "café au lait"),  # space between words dropped
        (b"Re: =?iso-8859-1?q?r=E9union?= today", "Re: réunion today"),
        (b"=?iso-2022-jp?b?GyRCRnxLXDhsGyhC?=", "日本語"),
        (b"=?utf-8*ja?q?lang_tag?=", "lang tag"),  # RFC 2231 language suffix
    ],
)
def test_encoded_words_are_decoded(value: bytes, expected: str) -> None:
    assert subject_of(message(b"Subject: " + value)) == expected


def test_raw_utf8_subject() -> None:
    assert subject_of(message("Subject: 件名 ünïcode".encode())) == "件名 ünïcode"


def test_missing_subject_is_none() -> None:
    assert subject_of(message(b"From: a@alpha.test", b"To: b@beta.test")) is None
    assert subject_of(message(b"X-Subject: not this one", b"Old-Subject: nor this")) is None
    assert subject_of(b"") is None
    assert subject_of(b"\r\nSubject: in the body\r\n") is None  # no header section at all


def test_subject_in_the_body_or_a_continuation_is_not_the_subject() -> None:
    assert subject_of(message(b"To: b@beta.test", body=b"Subject: body text\r\n")) is None
    assert subject_of(message(b"To: b@beta.test", b" Subject: a folded line")) is None
    # A line that is not a field ends the header for a parser: what follows is body.
    assert subject_of(message(b"To: b@beta.test", b"not a field", b"Subject: after it")) is None


def test_the_first_subject_wins_and_empty_is_empty() -> None:
    assert subject_of(message(b"Subject: first", b"Subject: second")) == "first"
    assert subject_of(message(b"Subject:")) == ""
    assert subject_of(message(b"From x@y Sat Nov 28 12:00:00 2026", b"Subject: after mbox From")) == (
        "after mbox From"
    )


def test_folding_and_whitespace_collapse() -> None:
    folded = message(b"Subject: a long\r\n  subject\r\n\tfolded   thrice", b"To: b@beta.test")
    assert subject_of(folded) == "a long subject folded thrice"
    encoded = message(b"Subject: =?utf-8?q?one?=\r\n =?utf-8?q?_two?=")
    assert subject_of(encoded) == "one two"


def test_control_characters_are_removed() -> None:
    assert subject_of(message(b"Subject: bell\x07 escape\x1b[31m red\x7f del")) == "bell escape [31m red del"
    # Encoded-words can carry what a raw header line cannot: NUL, CR, LF, C1 controls.
    decoded = subject_of(message(b"Subject: =?utf-8?q?a=00b=0D=0AX-Injected:_yes=C2=85c?="))
    assert decoded == "a b X-Injected: yes c"
    assert subject_of(message("Subject: \u202eevil\u202c text".encode())) == "evil text"


def test_invalid_encodings_never_raise() -> None:
    cases = {
        b"=?no-such-charset?q?abc?=": "abc",
        b"=?rot13?q?abc?=": "abc",  # a codec, not a text encoding
        b"=?utf-8?b?/w==?=": "\ufffd",  # not UTF-8
        b"=?utf-16-le?b?ANg=?=": "\ufffd",  # half a surrogate pair
        b"\xff\xfe raw garbage": "\ufffd\ufffd raw garbage",
        b"=?utf-8?q?unterminated": "=?utf-8?q?unterminated",
        b"=?unknown-8bit?q?=FF?=": "\ufffd",
        b"=?utf-8?q?a?= \\ud800 b": "a \ufffd b",  # a lone surrogate would not encode as UTF-8 JSON
    }
    for value, expected in cases.items():
        assert subject_of(message(b"Subject: " + value)) == expected, value


def test_random_garbage_gives_a_clean_line() -> None:
    rng = random.Random(2047)
    alphabet = b'=?qQbB_utf8-:;"()<>\\ \t\x00\x1b\x80\xc3\xa9\xff'
    for _ in range(2000):
        value = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        subject = subject_of(message(b"Subject: " + value.replace(b"\r", b"").replace(b"\n", b"")))
        assert subject is not None and len(subject) <= MAX_SUBJECT
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in subject)
        json.dumps(subject).encode("utf-8")  # what the trace event becomes


def test_huge_subject_is_bounded_with_an_ellipsis() -> None:
    subject = subject_of(message(b"Subject: " + b"word " * 10_000))
    assert subject is not None and len(subject) == MAX_SUBJECT and subject.endswith("…")
    folded = b"\r\n ".join([b"=?utf-8?b?5pel5pys6Kqe?="] * 50_000)  # a megabyte of encoded-words
    subject = subject_of(message(b"Subject: " + folded))
    assert subject is not None and subject.startswith("日本語日本語") and len(subject) == MAX_SUBJECT


def test_markup_stays_text() -> None:
    value = '<script>alert(1)</script> <img src=x onerror="window.__xss2=1">'
    assert subject_of(message(b"Subject: " + value.encode())) == value
