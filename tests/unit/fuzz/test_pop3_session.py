"""Fuzzing the POP3 session with random and adversarial conversations.

Commands well-formed and not (USER/PASS/AUTH PLAIN with random base64, CAPA/STLS/QUIT, STAT/LIST/UIDL/
RETR/TOP/DELE/RSET/NOOP with random arguments, overlong lines, binary junk), cut into random TCP
segments, with the auth service, the lock store and the disk failing now and then. After every step:

- every response is `+OK`/`-ERR` (or AUTH's `+ ` continuation), multi-line ones end with "." and are
  dot-stuffed, and RETR/TOP/LIST/STAT agree with the stored messages;
- a login succeeds only with the right password, and the session is in TRANSACTION only after one;
- DELE'd messages disappear only after QUIT answered +OK in the TRANSACTION state, and exactly those;
  every other way a session ends leaves the maildrop as it was;
- no exception escapes (nothing logged with a traceback), nothing is written after the close.
"""

import asyncio
import base64
import logging
from dataclasses import dataclass, field

from hypothesis import event, given
from hypothesis import strategies as st

from tests.unit.fuzz.budget import fuzz_settings
from tests.unit.fuzz.pop3_harness import Mailbox, MemoryLocks, Pop3Conversation
from tests.unit.fuzz.smtp_harness import DISABLED_USER, PASSWORD, USER, ErrorLog

MAX_STEPS = 25
SINGLE_OK = (b"+OK", b"-ERR")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


GOOD_PLAIN = b64(f"\0{USER}\0{PASSWORD}".encode())
SASL = st.one_of(
    st.sampled_from(
        [
            GOOD_PLAIN,
            b64(f"{USER}\0{USER}\0{PASSWORD}".encode()),
            b64(f"{DISABLED_USER}\0{USER}\0{PASSWORD}".encode()),
            b64(f"\0{USER}\0wrong".encode()),
            b64(f"\0{USER}".encode()),
            b64(b"\0" + b"u" * 400 + b"\0p"),
            "=",
            "*",
            "not base64!",
            "QUJ",
        ]
    ),
    st.binary(max_size=60).map(b64),
    st.binary(min_size=200, max_size=500).map(b64),  # longer than the AUTH line limit
)
NUMBERS = st.one_of(
    st.integers(0, 6).map(str),
    st.sampled_from(["", "-1", "+1", "1 ", " 1", "1x", "\uff11", "99999999999999999999999", "0x1", "1 2 3"]),
)
COMMANDS = st.one_of(
    st.sampled_from(["CAPA", "STLS", "STLS x", "QUIT", "NOOP", "STAT", "RSET", "LIST", "UIDL", "AUTH", "USER"]),
    st.sampled_from([f"USER {USER}", f"USER {USER.upper()}", f"USER {DISABLED_USER}", "USER nobody", "USER  "]),
    st.sampled_from([f"PASS {PASSWORD}", "PASS wrong", "PASS", "PASS " + "p" * 300]),
    st.sampled_from(["AUTH PLAIN", "AUTH plain", "AUTH LOGIN", "AUTH X"]),
    st.tuples(st.just("AUTH PLAIN "), SASL).map("".join),
    st.tuples(st.sampled_from(["LIST ", "UIDL ", "RETR ", "DELE ", "TOP "]), NUMBERS).map("".join),
    st.tuples(st.just("TOP "), NUMBERS, st.just(" "), NUMBERS).map("".join),
    st.text(max_size=40).map(lambda t: t.replace("\n", "")),
).map(lambda c: c.replace("\n", "").encode("utf-8", "surrogateescape") + b"\r\n")  # fmt: skip
JUNK = st.one_of(
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"") + b"\r\n"),
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"") + b"\n"),
    st.integers(250, 1200).map(lambda n: b"Z" * n + b"\r\n"),  # over the 255-octet command limit
)
LINES = st.one_of(COMMANDS, JUNK)
MESSAGE_LINES = st.one_of(
    st.sampled_from([b"Subject: hi", b"", b".", b"..", b".x", b"\r", b"a\rb", b"x" * 80]),
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")),
)
MESSAGES = st.tuples(st.lists(MESSAGE_LINES, max_size=10), st.booleans()).map(
    lambda m: b"\n".join(m[0]) + (b"\n" if m[1] else b"")
)
MAILBOXES = st.lists(MESSAGES, max_size=4).map(lambda ms: {f"uid{i}.fuzz": m for i, m in enumerate(ms)})
STEPS = st.integers(0, MAX_STEPS)
WELL_BEHAVED = st.integers(0, 3).map(bool)
LOGINS = st.sampled_from(
    [f"USER {USER}\r\n".encode(), b"AUTH PLAIN\r\n", f"AUTH PLAIN {GOOD_PLAIN}\r\n".encode()]
)


# --- reading responses ------------------------------------------------------------------------------


def split_lines(output: bytes) -> list[bytes]:
    if not output:
        return []
    assert output.endswith(b"\r\n"), f"output does not end with CRLF: {output[-60:]!r}"
    return output[:-2].split(b"\r\n")


def take_multiline(lines: list[bytes]) -> list[bytes]:
    """The body of a multi-line response at the front of `lines` (removed), unstuffed."""
    body: list[bytes] = []
    while True:
        assert lines, "a multi-line response without its terminating '.'"
        line = lines.pop(0)
        if line == b".":
            return body
        body.append(line[1:] if line.startswith(b".") else line)


def is_multiline(verb: bytes, argument: bytes, state: str) -> bool:
    if verb == b"CAPA" or (verb == b"AUTH" and not argument.strip()):
        return True
    if state != "TRANSACTION":
        return False
    return verb in (b"RETR", b"TOP") or (verb in (b"LIST", b"UIDL") and not argument)


# --- the model --------------------------------------------------------------------------------------


@dataclass
class Model:
    mailbox_before: Mailbox
    state: str = "AUTHORIZATION"
    user: bytes | None = None
    expect: str = "command"  # "sasl" after "+ "
    snapshot: list[tuple[str, bytes]] = field(default_factory=list)
    deleted: set[int] = field(default_factory=set)
    updated: bool = False  # QUIT answered +OK in TRANSACTION

    def enter_transaction(self) -> None:
        self.state = "TRANSACTION"
        self.snapshot = list(self.mailbox_before.items())

    def visible(self) -> list[int]:
        return [n for n in range(1, len(self.snapshot) + 1) if n not in self.deleted]


def good_plain(blob: bytes) -> bool:
    """A SASL PLAIN response that must log in: alice's password, authorizing as nobody else."""
    try:
        authzid, authcid, password = base64.b64decode(blob, validate=True).split(b"\0")
    except ValueError:
        return False
    return authcid.lower() == USER.encode() and password == PASSWORD.encode() and authzid in (b"", authcid)


def wire_lines(stored: bytes) -> list[bytes]:
    """A stored message's lines as RETR must send them (before stuffing)."""
    text = stored if stored.endswith(b"\n") or not stored else stored + b"\n"
    return text.split(b"\n")[:-1] if text else []


def number(argument: bytes) -> int | None:
    return int(argument) if argument.isdigit() and argument.isascii() else None


def check_transaction_reply(
    model: Model, verb: bytes, argument: bytes, first: bytes, body: list[bytes]
) -> None:
    visible = model.visible()
    if verb == b"STAT" and first.startswith(b"+OK"):
        size = sum(
            len(b"".join(line + b"\r\n" for line in wire_lines(model.snapshot[n - 1][1]))) for n in visible
        )
        assert first == f"+OK {len(visible)} {size}".encode(), first
    if verb in (b"RETR", b"DELE", b"LIST", b"UIDL", b"TOP") and argument:
        n = number(argument.partition(b" ")[0] if verb == b"TOP" else argument)
        ok = n is not None and n in visible
        if verb == b"TOP" and not argument.partition(b" ")[2].isdigit():
            ok = False
        assert first.startswith(b"+OK") == ok, f"{verb!r} {argument!r} answered {first!r} (visible {visible})"
        if not ok:
            return
        assert n is not None
        stored = model.snapshot[n - 1][1]
        if verb == b"RETR":
            assert body == wire_lines(stored), "RETR does not send the stored message"
        elif verb == b"TOP":
            lines = wire_lines(stored)
            k = int(argument.partition(b" ")[2].decode())
            header = lines.index(b"") if b"" in lines else len(lines)
            assert body == lines[: header + 1 + k], "TOP sends other lines than the header and n lines"
        elif verb == b"DELE":
            model.deleted.add(n)
        elif verb == b"LIST":
            size = len(b"".join(line + b"\r\n" for line in wire_lines(stored)))
            assert first == f"+OK {n} {size}".encode(), first
    if verb in (b"LIST", b"UIDL") and not argument and first.startswith(b"+OK"):
        assert [line.split(b" ")[0] for line in body] == [str(n).encode() for n in visible]
    if verb == b"RSET" and first.startswith(b"+OK"):
        model.deleted.clear()


def advance(model: Model, conversation: Pop3Conversation, sent: bytes, output: bytes) -> None:
    lines = split_lines(output)
    if model.expect == "sasl":
        model.expect = "command"
        if lines:
            first = lines.pop(0)
            assert first.startswith(SINGLE_OK), first
            if first.startswith(b"+OK"):
                assert good_plain(sent.strip()), f"logged in with {sent!r}"
                model.enter_transaction()
        assert not lines or lines[0].startswith(b"-ERR"), lines
        return
    verb, _, argument = sent.rstrip(b"\r\n").partition(b" ")
    verb = verb.upper()
    while lines:
        first = lines.pop(0)
        if first == b"+ ":
            assert verb == b"AUTH" and model.state == "AUTHORIZATION", sent
            model.expect = "sasl"
            continue
        assert first.startswith(SINGLE_OK), f"not a POP3 response: {first!r}"
        if first.startswith(b"-ERR [SYS/TEMP] Mailbox lock lost"):
            assert conversation.locks.lost.is_set() and not lines, (first, lines)
            model.state = "CLOSED"
            return
        body: list[bytes] = []
        if first.startswith(b"+OK") and is_multiline(verb, argument, model.state):
            body = take_multiline(lines)
        if first.startswith(b"+OK"):
            if model.state == "AUTHORIZATION" and verb == b"USER":
                model.user = argument.strip()
            elif model.state == "AUTHORIZATION" and verb == b"PASS":
                assert model.user is not None and model.user.lower() == USER.encode(), model.user
                assert argument == PASSWORD.encode(), f"logged in with the password {argument!r}"
                model.enter_transaction()
            elif model.state == "AUTHORIZATION" and verb == b"AUTH" and argument.strip():
                mechanism, _, initial = argument.strip().partition(b" ")
                assert mechanism.upper() == b"PLAIN" and good_plain(initial.strip()), sent
                model.enter_transaction()
            elif model.state == "TRANSACTION" and verb == b"QUIT":
                model.updated = True
                model.state = "CLOSED"
            elif model.state == "TRANSACTION":
                check_transaction_reply(model, verb, argument, first, body)
        elif model.state == "TRANSACTION":
            check_transaction_reply(model, verb, argument, first, body)
        if verb == b"PASS" and first != b"-ERR Line too long":  # an overlong line is no PASS at all
            model.user = None


async def converse(
    data: st.DataObject, conversation: Pop3Conversation, model: Model, mailbox: Mailbox
) -> None:
    greeting = await conversation.start()
    assert greeting == b"+OK Yubin POP3 server ready\r\n"
    for _ in range(data.draw(STEPS, label="steps")):
        if conversation.closed:
            break
        if model.expect == "sasl":
            sasl = st.just(GOOD_PLAIN) if data.draw(WELL_BEHAVED, label="well-behaved") else SASL
            sent = data.draw(sasl, label="sasl").encode() + b"\r\n"
        elif data.draw(WELL_BEHAVED, label="well-behaved"):
            sent = next_good_command(model, data)
        else:
            sent = data.draw(LINES, label="line")
        if model.state == "TRANSACTION" and data.draw(st.integers(0, 40), label="lose lock") == 0:
            conversation.locks.lose()
            event("lock lost")
        cuts = data.draw(st.lists(st.integers(1, max(1, len(sent) - 1)), max_size=2), label="cuts")
        was = model.state
        output = await conversation.send(sent, cuts)
        advance(model, conversation, sent, output)
        if was == "TRANSACTION" and not model.updated:
            assert mailbox == model.mailbox_before, "the maildrop changed before UPDATE"
    await conversation.end()
    event(f"ended in {model.state}")
    if model.updated:
        expected = {uid: m for n, (uid, m) in enumerate(model.snapshot, start=1) if n not in model.deleted}
        assert mailbox == expected, "UPDATE removed other messages than the ones marked deleted"
        event(f"deleted {len(model.deleted)}")
    else:
        assert mailbox == model.mailbox_before, "messages removed without QUIT in the TRANSACTION state"


def next_good_command(model: Model, data: st.DataObject) -> bytes:
    if model.state != "TRANSACTION":
        if model.user is not None:
            return f"PASS {PASSWORD}\r\n".encode()
        return data.draw(LOGINS, label="login")
    verb = data.draw(
        st.sampled_from(
            ["STAT", "LIST", "UIDL", "RETR", "TOP", "DELE", "DELE", "DELE", "RSET", "QUIT", "QUIT"]
        ),
        label="verb",
    )
    if verb in ("RETR", "DELE", "TOP"):
        n = data.draw(st.integers(1, max(1, len(model.snapshot))), label="number")
        tail = f" {data.draw(st.integers(0, 3), label='lines')}" if verb == "TOP" else ""
        return f"{verb} {n}{tail}\r\n".encode()
    return f"{verb}\r\n".encode()


@fuzz_settings(share=1.0)
@given(
    data=st.data(),
    mailbox=MAILBOXES,
    allow_plaintext_auth=st.integers(0, 5).map(bool),
    streamed=st.integers(0, 5).map(lambda n: n == 0),
    directory_failures=st.frozensets(st.integers(0, 6), max_size=2),
    in_use=st.integers(0, 10).map(lambda n: n == 0),
    redis_down=st.integers(0, 10).map(lambda n: n == 0),
    maildrop_failing=st.integers(0, 10).map(lambda n: n == 0),
)
def test_pop3_session(
    data: st.DataObject,
    mailbox: Mailbox,
    allow_plaintext_auth: bool,
    streamed: bool,
    directory_failures: frozenset[int],
    in_use: bool,
    redis_down: bool,
    maildrop_failing: bool,
) -> None:
    errors = ErrorLog()
    logging.getLogger().addHandler(errors)

    async def main() -> Pop3Conversation:
        conversation = Pop3Conversation(
            {USER: mailbox},
            allow_plaintext_auth=allow_plaintext_auth,
            inline_read_max_bytes=0 if streamed else 1 << 20,
            directory_failures=directory_failures,
            locks=MemoryLocks(frozenset({USER}) if in_use else frozenset(), redis_down),
            maildrop_failing=maildrop_failing,
        )
        await converse(data, conversation, Model(dict(mailbox)), mailbox)
        return conversation

    try:
        conversation = asyncio.run(main())
    finally:
        logging.getLogger().removeHandler(errors)
    assert not errors.records, f"logged with a traceback: {[r.getMessage() for r in errors.records]}"
    assert conversation.transport.written_after_close == 0, "wrote to a closed connection"
    if not conversation.locks.lost.is_set():
        assert not conversation.locks.holders - ({USER} if in_use else set()), "a lock outlived its session"
