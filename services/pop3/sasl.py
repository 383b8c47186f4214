"""SASL PLAIN (RFC 4616) as POP3 AUTH carries it (RFC 5034): base64 of `authzid NUL authcid NUL passwd`."""

import base64
import binascii


class InvalidBase64(ValueError):
    """The client's response is not base64 (RFC 5034 §4: the server rejects the AUTH command)."""


class InvalidPlain(ValueError):
    """Decodes, but is not a PLAIN message we accept (wrong shape, or asks to act as someone else)."""


def decode_response(data: str) -> bytes:
    """A client response: base64, or "=" for an empty initial response (RFC 5034 §4)."""
    if data == "=":
        return b""
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidBase64(str(exc)) from exc


def parse_plain(message: bytes) -> tuple[str, str]:
    """(username, password). An authorization identity other than the user itself is refused: nobody
    may read someone else's mailbox with their own password."""
    parts = message.split(b"\0")
    if len(parts) != 3:
        raise InvalidPlain("PLAIN needs authzid NUL authcid NUL passwd")
    try:
        authzid, authcid, passwd = (part.decode("utf-8") for part in parts)
    except UnicodeDecodeError as exc:
        raise InvalidPlain("PLAIN fields must be UTF-8") from exc
    if not authcid or (authzid and authzid != authcid):
        raise InvalidPlain("authorization identity differs from the user")
    return authcid, passwd
