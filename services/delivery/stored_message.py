"""The bytes that go into a mailbox file: trace headers on top, LF line endings (see `shared.maildir`).

As the final delivery agent we add (RFC 5321 §4.4):
- `Return-Path: <sender>`: the envelope sender, `<>` for the null sender, so replies to a bounce or an
  auto-reply can be told apart by the reader;
- `Delivered-To: <recipient>`: which of the user's addresses this copy was delivered to (as Postfix does).

A `Return-Path` already in the message did not come from us (a sender must not add one, RFC 5321 §4.4): it
is removed, as Postfix's cleanup does, so the reader cannot be misled by a forged one.
"""

import re

from shared.maildir import to_disk

# The header section ends at the first empty line; a message starting with one has no header at all.
_HEADER_END = re.compile(rb"(\r?\n)\r?\n")
# A header field starts at a line that does not begin with white space (continuations do).
_FIELD_START = re.compile(rb"(?<=\n)(?=[^ \t])")


def _without_return_path(message: bytes) -> bytes:
    if message.startswith((b"\r\n", b"\n")):
        return message
    end = _HEADER_END.search(message)
    split_at = end.end(1) if end else len(message)  # the header's last line keeps its line break
    head, rest = message[:split_at], message[split_at:]
    fields = _FIELD_START.split(head)
    kept = [f for f in fields if not f[:12].lower().startswith(b"return-path:")]
    if len(kept) == len(fields):
        return message
    return b"".join(kept) + rest


def stored_message(body: bytes, sender: str, recipient: str) -> bytes:
    """The mailbox file for `recipient`: Return-Path and Delivered-To, then the message with LF endings."""
    trace = f"Return-Path: <{sender}>\nDelivered-To: {recipient}\n".encode()
    return trace + to_disk(_without_return_path(body))
