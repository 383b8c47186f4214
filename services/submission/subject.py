"""The Subject of an accepted message, as one short line of plain text for its `accepted` trace event.

People watching the trace (the console, `yubin trace`) see it; nothing acts on it. It is attacker-
controlled: readers must still show it as text, but here it is already reduced to something a terminal or
a page can hold: RFC 2047 encoded-words decoded (stdlib `email.header`), control and bidi-override
characters removed, folding and runs of white space made one space, at most `MAX_SUBJECT` characters.

Garbage never fails the transaction: an unknown charset, broken base64 or bytes that are not UTF-8 give
replacement characters or the text as written, not an exception. Only the header section is read, and of
the Subject field only its first `MAX_RAW_SUBJECT` octets.
"""

import re
from email.errors import HeaderParseError
from email.header import decode_header

from services.submission.headers import header_section

MAX_SUBJECT = 200
"""Characters kept (the last one an ellipsis when cut): a line on a map or in a list, not the message."""
MAX_RAW_SUBJECT = 4096
"""Octets of the field read: enough for 200 characters written as encoded-words (4-octet UTF-8 in
base64 takes about 1,400), while a folded Subject of a megabyte costs no more to decode than this."""

# A line that is neither a field's first line (RFC 5322 §2.2: a name, a colon) nor a continuation (SP/HT):
# as in headers.py and the stdlib parser, the header section ends there. A regex: a long header is C-speed.
_NOT_A_FIELD = re.compile(rb"^(?![ \t]|[\x21-\x39\x3b-\x7e]*:)", re.MULTILINE)
_ENCODED_WORD = "=?"
# Explicit direction marks and overrides: they would make the text shown after them run backwards.
_BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# C0, DEL and C1 (Unicode category Cc): line breaks, terminal escapes, never shown as such.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
# A lone surrogate (the text \ud800 between encoded-words decodes to one) cannot be written as UTF-8 JSON.
_SURROGATE = re.compile("[\ud800-\udfff]")


def raw_subject(content: bytes) -> bytes | None:
    """The first Subject field's value as written (its folded lines still joined by CRLF), or None."""
    section = header_section(content)
    lowered = section.lower()  # one C-speed pass; most of the header is never looked at in Python
    if lowered.startswith(b"subject:"):
        start = 0
    else:
        start = lowered.find(b"\r\nsubject:") + 2  # a field's first line: continuations start with SP/HT
        if start == 1:
            return None
    if not _all_fields(section[:start]):
        return None  # that "Subject" is in what a parser takes for the body
    end = start
    while True:  # the field's first line and its continuation lines, up to MAX_RAW_SUBJECT octets
        end = section.find(b"\r\n", end)
        if end < 0:
            end = len(section)
            break
        if section[end + 2 : end + 3] not in (b" ", b"\t") or end - start > MAX_RAW_SUBJECT:
            break
        end += 2
    return section[start + len(b"subject:") : min(end, start + MAX_RAW_SUBJECT)]


def _all_fields(lines: bytes) -> bool:
    """Whether these CRLF-terminated lines are all header fields (first lines or continuations)."""
    start = lines.find(b"\r\n") + 2 if lines.startswith(b"From ") else 0  # mbox "From ": the parser skips it
    other = _NOT_A_FIELD.search(lines, start)
    return other is None or other.start() == len(lines)


def decode(raw: bytes) -> str:
    """The field value as text: encoded-words decoded, anything undecodable replaced, never an error."""
    # RFC 6532 allows UTF-8 in header fields (SMTPUTF8); anything else 8-bit is garbage anyway.
    text = raw.decode("utf-8", "replace")
    if _ENCODED_WORD not in text:
        return text
    try:
        parts = decode_header(text)
    except (HeaderParseError, ValueError, LookupError):
        return text  # broken base64 in an encoded-word: show what was written
    decoded = []
    for part, charset in parts:
        if isinstance(part, str):
            decoded.append(part)
        elif charset is None:
            # decode_header gave back the text between encoded-words in this codec.
            decoded.append(part.decode("raw-unicode-escape", "replace"))
        else:
            decoded.append(_decode_word(part, charset))
    return "".join(decoded)


def _decode_word(data: bytes, charset: str) -> str:
    name = charset.split("*", 1)[0]  # RFC 2231 §5: =?utf-8*ja?...
    try:
        return data.decode(name, "replace")
    except (LookupError, UnicodeError, ValueError, TypeError):
        # An unknown charset (or not a text codec, like rot13): UTF-8 is the likeliest guess.
        return data.decode("utf-8", "replace")


def clean(text: str, limit: int = MAX_SUBJECT) -> str:
    """One line of printable text, at most `limit` characters (the last an ellipsis when cut)."""
    text = _SURROGATE.sub("\ufffd", _CONTROL.sub(" ", _BIDI_CONTROLS.sub("", text)))
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def subject_of(content: bytes) -> str | None:
    """The message's Subject for the trace, or None when it has none (an empty one gives "")."""
    raw = raw_subject(content)
    if raw is None:
        return None
    try:
        return clean(decode(raw))
    except Exception:  # a display nicety must never cost the message its 250
        return clean(raw.decode("utf-8", "replace"))
