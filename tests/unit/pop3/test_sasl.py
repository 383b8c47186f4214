"""AUTH PLAIN messages (RFC 4616 inside RFC 5034)."""

import base64

import pytest

from services.pop3.sasl import InvalidBase64, InvalidPlain, decode_response, parse_plain


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_plain_without_authzid() -> None:
    assert parse_plain(decode_response(b64(b"\0bob@alpha.test\0pass word"))) == (
        "bob@alpha.test",
        "pass word",
    )


def test_plain_with_authzid_equal_to_the_user() -> None:
    assert parse_plain(b"bob@alpha.test\0bob@alpha.test\0pw") == ("bob@alpha.test", "pw")


def test_plain_acting_as_someone_else_is_refused() -> None:
    with pytest.raises(InvalidPlain):
        parse_plain(b"ann@alpha.test\0bob@alpha.test\0pw")


@pytest.mark.parametrize("message", [b"", b"bob\0pw", b"\0\0pw", b"a\0b\0c\0d", b"\0bob\0\xff\xfe"])
def test_malformed_plain(message: bytes) -> None:
    with pytest.raises(InvalidPlain):
        parse_plain(message)


def test_equals_sign_is_an_empty_response() -> None:
    assert decode_response("=") == b""


@pytest.mark.parametrize("data", ["not base64!", "AAA", "AA=A"])
def test_invalid_base64(data: str) -> None:
    with pytest.raises(InvalidBase64):
        decode_response(data)


def test_utf8_password() -> None:
    assert parse_plain("\0bob@alpha.test\0pässwörd".encode()) == ("bob@alpha.test", "pässwörd")
