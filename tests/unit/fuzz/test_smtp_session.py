"""Fuzzing the SMTP reception session, both roles, with random and adversarial conversations.

Each example is one conversation: commands well-formed and not (EHLO/HELO/MAIL/RCPT/DATA/RSET/NOOP/VRFY/
EXPN/HELP/AUTH/STARTTLS/QUIT and junk), SASL responses after a 334, message data after a 354 (bare CR/LF,
dot-stuffing, overlong lines, fake ends of data), with the auth service and Redis failing now and then.
After every step:

- every line the server wrote is a reply line (`^[2-5][0-5]\\d[ -]`, CRLF, no bare CR/LF), error replies
  carry an enhanced status code of their class (RFC 3463), nothing is written after the session closed;
- no exception reached aiosmtpd's catch-all, and nothing was logged with a traceback;
- the state the replies imply is consistent: MAIL only after EHLO/HELO (and AUTH on submission), RCPT
  only inside a transaction and only to what the role may accept, DATA's 354 only with a recipient;
- the queue got a message exactly when DATA was answered 250, holding the dot-unstuffed data after our
  header fields, for exactly the accepted recipients.
"""

import asyncio
import base64
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from hypothesis import event, given
from hypothesis import strategies as st

from shared.config.submission import SmtpRole
from tests.unit.fuzz.budget import fuzz_settings
from tests.unit.fuzz.smtp_harness import (
    DISABLED_USER,
    DOMAIN,
    ENABLED,
    PASSWORD,
    USER,
    ErrorLog,
    Reply,
    SmtpConversation,
)

ENHANCED = re.compile(rb"^\d{3}[ -]([245])\.\d{1,3}\.\d{1,3}( |$)")
MAX_STEPS = 25

# --- strategies -----------------------------------------------------------------------------------------

ADDRESSES = st.sampled_from(
    [
        USER,
        USER.upper(),
        DISABLED_USER,
        f"nobody@{DOMAIN}",
        f"alice%remote.example@{DOMAIN}",
        f'"alice@remote.example"@{DOMAIN}',
        f"@relay.example:{USER}",
        "someone@remote.example",
        "ünï@remote.example",
        "",
        "a" * 70 + f"@{DOMAIN}",
        "no-at-sign",
        "x@",
        "@x",
    ]
)
PATHS = st.one_of(
    ADDRESSES.map(lambda a: f"<{a}>"),
    st.just("<>"),
    ADDRESSES,
    st.text(max_size=30),
)
PARAMS = st.lists(
    st.sampled_from(["SIZE=100", "SIZE=999999", "SIZE=x", "BODY=8BITMIME", "BODY=7BIT", "BODY=X", "SMTPUTF8",
                     "SMTPUTF8=1", "FOO=BAR", "NOTIFY=NEVER", "="]),
    max_size=3,
).map(lambda ps: "".join(" " + p for p in ps))  # fmt: skip


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


SASL_PLAIN = st.one_of(
    st.sampled_from(
        [
            b64(f"\0{USER}\0{PASSWORD}".encode()),
            b64(f"{USER}\0{USER}\0{PASSWORD}".encode()),
            b64(f"{DISABLED_USER}\0{USER}\0{PASSWORD}".encode()),
            b64(f"\0{USER}\0wrong".encode()),
            b64(f"\0{DISABLED_USER}\0bob's password".encode()),
            b64(f"\0{USER}".encode()),
            b64(b"\0\0"),
            b64(b"\xff\0\xfe\0\xfd"),
            b64(b"\0" + b"u" * 400 + b"\0p"),
            "=",
            "*",
            "not base64!",
            "QUJD",
            "QUJ",
        ]
    ),
    st.binary(max_size=60).map(b64),
    st.binary(min_size=70, max_size=200).map(b64),  # over the line limit once encoded
)
SASL_LOGIN = st.one_of(
    st.sampled_from([b64(USER.encode()), b64(PASSWORD.encode()), b64(b"\xff\xfe"), "*", "=", "%%%"]),
    st.binary(max_size=40).map(b64),
)

COMMANDS = st.one_of(
    st.sampled_from(["EHLO client.example", "HELO client.example", "EHLO", "HELO", "ehlo x"]),
    st.tuples(st.sampled_from(["MAIL FROM:", "MAIL FROM: ", "mail from:", "MAIL"]), PATHS, PARAMS).map(
        "".join
    ),
    st.tuples(st.sampled_from(["RCPT TO:", "RCPT TO: ", "rcpt to:", "RCPT"]), PATHS, PARAMS).map("".join),
    st.sampled_from(["DATA", "DATA x", "RSET", "RSET x", "NOOP", "NOOP x", "QUIT", "VRFY", "HELP", "HELP MAIL"]),
    st.tuples(st.sampled_from(["VRFY ", "EXPN "]), ADDRESSES).map("".join),
    st.sampled_from(["STARTTLS", "STARTTLS x", "AUTH", "AUTH PLAIN", "AUTH LOGIN", "AUTH CRAM-MD5", "AUTH X Y Z"]),
    st.tuples(st.just("AUTH PLAIN "), SASL_PLAIN).map("".join),
    st.tuples(st.just("AUTH LOGIN "), SASL_LOGIN).map("".join),
    st.text(max_size=40).map(lambda t: t.replace("\n", "")),
).map(lambda c: c.replace("\n", "").encode("utf-8", "surrogateescape") + b"\r\n")  # fmt: skip

JUNK_LINES = st.one_of(
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"") + b"\r\n"),
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"") + b"\n"),  # bare LF ending
    st.integers(90, 400).map(lambda n: b"X" * n + b"\r\n"),  # over the 100-octet line limit
)

DATA_LINES = st.one_of(
    st.sampled_from(
        [
            b"Subject: fuzz",
            b"From: <alice@example.test>",
            b"Received: from x by y",
            b"",
            b".",
            b"..",
            b".hidden",
            b"...",
            b". ",
            b"line with a bare \n LF",
            b"line with a bare \r CR",
            b"fake end\n.\n",
            b"fake end\r\n.\n",
            b"\r",
            b"x" * 98,
            b"." + b"x" * 98,
            b"x" * 99,
            b"." + b"x" * 99,
            b"MAIL FROM:<evil@remote.example>",
        ]
    ),
    st.binary(max_size=50),
    st.integers(101, 300).map(lambda n: b"y" * n),
)


@dataclass(frozen=True)
class Payload:
    lines: list[bytes]  # without the CRLF that ends each
    terminated: bool  # ends with <CRLF>.<CRLF>

    @property
    def wire(self) -> bytes:
        return b"".join(line + b"\r\n" for line in self.lines) + (b".\r\n" if self.terminated else b"")

    @property
    def unstuffed(self) -> bytes:
        return b"".join((line[1:] if line.startswith(b".") else line) + b"\r\n" for line in self.lines)

    def acceptable(self, max_line: int, max_size: int) -> bool:
        """What a strict server must accept: only CRLF line ends, lines and size within the limits."""
        return (
            all(b"\r" not in line and b"\n" not in line for line in self.lines)
            and all(len(line) + 2 <= max_line + (1 if line.startswith(b".") else 0) for line in self.lines)
            and len(self.unstuffed) <= max_size
        )


def wire_lines(pieces: list[bytes]) -> list[bytes]:
    """The lines as the server will see them (a piece may hold a CRLF, so be several lines), a line of
    just "." stuffed by the client (else it would end the data early; RFC 5321 §4.5.2)."""
    lines = b"".join(piece + b"\r\n" for piece in pieces).split(b"\r\n")[:-1]
    return [b".." if line == b"." else line for line in lines]


PAYLOADS = st.builds(
    Payload, lines=st.lists(DATA_LINES, max_size=12).map(wire_lines), terminated=st.booleans()
)


# --- the model --------------------------------------------------------------------------------------


@dataclass
class Model:
    """What the replies so far say the session's state is."""

    role: SmtpRole
    greeted: bool = False
    authenticated: bool = False
    mail_from: bool = False
    recipients: set[str] = field(default_factory=set)
    stored: int = 0
    expect: str = "command"  # or "sasl" after a 334, "data" after a 354

    def reset_transaction(self) -> None:
        self.mail_from = False
        self.recipients = set()


def verb_of(line: bytes) -> bytes:
    return line.rstrip(b"\r\n").partition(b" ")[0].upper()


def argument_of(line: bytes) -> str:
    return line.rstrip(b"\r\n").partition(b" ")[2].decode("utf-8", "surrogateescape").strip()


def recipient_of(line: bytes) -> str | None:
    arg = argument_of(line)
    match = re.match(r"(?i)TO:\s*(?:<(?:@[^:]*:)?([^>]*)>|([^\s<>]+)$)", arg)
    return (match.group(1) or match.group(2)) if match else None


def check_reply_form(reply: Reply) -> None:
    first = reply.lines[0]
    if reply.code >= 400:
        match = ENHANCED.match(first)
        assert match is not None, f"error reply without an enhanced status code: {first!r}"
        assert match.group(1) == first[:1], f"enhanced code of another class: {first!r}"


def advance(model: Model, conversation: SmtpConversation, sent: bytes, replies: list[Reply]) -> None:
    """Check the replies to one step against the model, then move the model on."""
    for reply in replies:
        check_reply_form(reply)
    closing = [r for r in replies if r.code in (221, 421)]
    if closing:
        assert replies[-1] is closing[0], "the session replied after saying goodbye"
    if conversation.closed:
        assert closing or any(r.code == 502 and b"goodbye" in r.text for r in replies), (
            f"the session closed without a 221/421: {replies!r}"
        )
    real = [r for r in replies if r.code != 421]
    if model.expect == "data":
        model.expect = "command"
        if real:
            (final,) = real
            if final.code == 250:
                model.stored += 1
            model.reset_transaction()
        return
    if not real:
        return
    assert len(real) == 1, f"one line, one reply: {sent!r} got {replies!r}"
    (reply,) = real
    if model.expect == "sasl":
        assert reply.code in (235, 334, 454, 501, 535, 500), f"SASL step answered {reply.code}"
        if reply.code == 235:
            assert model.role is SmtpRole.SUBMISSION
            model.authenticated = True
        model.expect = "sasl" if reply.code == 334 else "command"
        return
    verb = verb_of(sent)
    if reply.code == 334:
        assert verb == b"AUTH" and model.role is SmtpRole.SUBMISSION, f"334 to {sent!r}"
        model.expect = "sasl"
        return
    if reply.code == 354:
        assert verb == b"DATA", f"354 to {sent!r}"
        assert model.greeted and model.mail_from and model.recipients, "354 without a complete envelope"
        model.expect = "data"
        return
    if verb in (b"EHLO", b"HELO") and reply.code == 250:
        model.greeted = True
        model.reset_transaction()
    elif verb == b"AUTH" and reply.code == 235:
        assert model.role is SmtpRole.SUBMISSION, "AUTH succeeded on the MX"
        assert USER in ENABLED
        model.authenticated = True
    elif verb == b"MAIL" and reply.code == 250:
        assert model.greeted, "MAIL accepted before EHLO/HELO"
        assert not model.mail_from, "nested MAIL accepted"
        if model.role is SmtpRole.SUBMISSION:
            assert model.authenticated, "MAIL accepted on submission without AUTH"
            assert "<>" not in argument_of(sent).replace(" ", "")[:7], "null sender accepted on submission"
        model.mail_from = True
    elif verb == b"RCPT" and reply.code == 250:
        assert model.mail_from, "RCPT accepted outside a transaction"
        envelope = conversation.session.envelope
        assert envelope is not None and envelope.rcpt_tos, f"250 to {sent!r} but no recipient recorded"
        recipient = envelope.rcpt_tos[-1]
        written = recipient_of(sent)
        assert written is None or written.lower() == recipient.lower(), (written, recipient)
        if model.role is SmtpRole.MX:
            assert recipient.lower() in ENABLED, f"the MX accepted {recipient!r}"
        else:
            assert model.authenticated
            if recipient.lower().endswith("@" + DOMAIN):
                assert recipient.lower() in ENABLED, f"submission accepted unknown local {recipient!r}"
        model.recipients.add(recipient.lower())
    elif verb == b"RSET" and reply.code == 250:
        model.reset_transaction()
    elif verb == b"VRFY":
        assert reply.code in (252, 501, 502), "VRFY must not tell whether a mailbox exists"


LINES = st.one_of(COMMANDS, JUNK_LINES)
SASL_RESPONSES = st.one_of(SASL_PLAIN, SASL_LOGIN)
WELL_BEHAVED = st.integers(0, 3).map(bool)  # three times in four the client does the expected next thing
STEPS = st.integers(0, MAX_STEPS)


def next_good_command(model: Model, with_initial_response: bool) -> bytes:
    """The command that moves a well-behaved client on to the next stage of a transaction."""
    if not model.greeted:
        return b"EHLO client.example\r\n"
    if model.role is SmtpRole.SUBMISSION and not model.authenticated:
        # With the initial response; without, the credentials may follow as a SASL step (or not).
        if with_initial_response:
            return b"AUTH PLAIN " + b64(f"\0{USER}\0{PASSWORD}".encode()).encode() + b"\r\n"
        return b"AUTH PLAIN\r\n"
    if not model.mail_from:
        sender = USER if model.role is SmtpRole.SUBMISSION else "someone@remote.example"
        return f"MAIL FROM:<{sender}>\r\n".encode()
    if not model.recipients:
        return f"RCPT TO:<{USER}>\r\n".encode()
    return b"DATA\r\n"


async def converse(data: st.DataObject, conversation: SmtpConversation, model: Model) -> None:
    greeting = await conversation.start()
    assert [r.code for r in greeting] == [220]
    for _ in range(data.draw(STEPS, label="steps")):
        if conversation.closed:
            break
        payload: Payload | None = None
        if model.expect == "data":
            payload = data.draw(PAYLOADS, label="payload")
            sent = payload.wire
        elif model.expect == "sasl":
            sent = data.draw(SASL_RESPONSES, label="sasl").encode() + b"\r\n"
        elif data.draw(WELL_BEHAVED, label="well-behaved"):
            sent = next_good_command(model, data.draw(st.booleans(), label="initial response"))
        else:
            sent = data.draw(LINES, label="line")
        before = len(conversation.queue.stored)
        cuts = data.draw(st.lists(st.integers(1, max(1, len(sent) - 1)), max_size=3), label="cuts")
        replies = await conversation.send(sent, cuts)
        if payload is not None:
            event("DATA answered " + ",".join(str(r.code) for r in replies))
            check_data_outcome(conversation, model, payload, replies, before)
            if not payload.terminated:
                assert replies == [] or all(r.code == 421 for r in replies)
                break  # the client leaves in the middle of the data
        advance(model, conversation, sent, replies)
        assert len(conversation.queue.stored) == model.stored, "stored without a 250 after DATA"
    await conversation.end()
    assert len(conversation.queue.stored) == model.stored, "stored without a 250 after DATA"


def check_data_outcome(
    conversation: SmtpConversation, model: Model, payload: Payload, replies: list[Reply], before: int
) -> None:
    stored = conversation.queue.stored[before:]
    final = [r for r in replies if r.code != 421]
    if not payload.terminated:
        assert not stored, "a message without its end of data was stored"
        return
    assert len(final) == 1, f"DATA got {replies!r}"
    code = final[0].code
    settings = conversation.settings
    if code != 250:
        assert not stored
        if payload.acceptable(settings.max_line_length, settings.max_message_size):
            assert code in (451, 554), f"an acceptable message was refused: {final[0].text!r}"
        return
    assert payload.acceptable(settings.max_line_length, settings.max_message_size), (
        f"accepted a message a strict server must refuse: {payload.lines!r}"
    )
    (message,) = stored
    expected = payload.unstuffed
    assert message.body.endswith(expected), "the stored body is not the dot-unstuffed data"
    added = message.body[: len(message.body) - len(expected)]
    assert added.startswith(b"Received: ") and added.endswith(b"\r\n")
    assert all(re.match(rb"^([A-Za-z-]+: |[ \t])", line) for line in added[:-2].split(b"\r\n")), added
    recipients = {r for env in message.routes.values() for r in env.recipients}
    assert recipients == model.recipients, "stored for other recipients than the ones accepted"


def run(make: Callable[[], SmtpConversation], data: st.DataObject) -> None:
    """One conversation; the session is made inside the loop that runs it (aiosmtpd binds to it)."""
    errors = ErrorLog()
    logging.getLogger().addHandler(errors)

    async def main() -> SmtpConversation:
        conversation = make()
        await converse(data, conversation, Model(conversation.role))
        return conversation

    try:
        conversation = asyncio.run(main())
    finally:
        logging.getLogger().removeHandler(errors)
    assert not conversation.handler.exceptions, (
        f"aiosmtpd's catch-all saw {conversation.handler.exceptions!r}"
    )
    assert not errors.records, f"logged with a traceback: {[r.getMessage() for r in errors.records]}"
    assert conversation.transport.written_after_close == 0, "wrote to a closed connection"


FAILURES = st.frozensets(st.integers(0, 12), max_size=3)


@fuzz_settings(share=0.5)
@given(
    data=st.data(),
    max_errors=st.integers(2, 20),
    directory_failures=FAILURES,
    queue_failures=FAILURES,
)
def test_mx_session(
    data: st.DataObject, max_errors: int, directory_failures: frozenset[int], queue_failures: frozenset[int]
) -> None:
    make = partial(
        SmtpConversation,
        SmtpRole.MX,
        max_errors=max_errors,
        directory_failures=directory_failures,
        queue_failures=queue_failures,
    )
    run(make, data)


@fuzz_settings(share=0.5)
@given(
    data=st.data(),
    max_errors=st.integers(2, 20),
    allow_plaintext_auth=st.booleans(),
    directory_failures=FAILURES,
    queue_failures=FAILURES,
)
def test_submission_session(
    data: st.DataObject,
    max_errors: int,
    allow_plaintext_auth: bool,
    directory_failures: frozenset[int],
    queue_failures: frozenset[int],
) -> None:
    make = partial(
        SmtpConversation,
        SmtpRole.SUBMISSION,
        max_errors=max_errors,
        allow_plaintext_auth=allow_plaintext_auth,
        directory_failures=directory_failures,
        queue_failures=queue_failures,
    )
    run(make, data)
