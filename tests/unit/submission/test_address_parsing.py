"""The fast path of `ReceptionSMTP._getaddr` gives exactly what aiosmtpd's own parser gives."""

import random

from aiosmtpd.smtp import SMTP

from services.submission.session import ReceptionSMTP

CASES = [
    "<bob@alpha.test>",
    "<bob@alpha.test> SIZE=4096 BODY=8BITMIME",
    "  <bob@alpha.test>",
    "<first.last+tag@mx.alpha.test>",
    "<o'brien!x%y@alpha.test>",
    "<a..b@alpha.test>",
    "<.a@alpha.test>",
    "<a.@alpha.test>",
    "<a@alpha..test>",
    "<a@-alpha.test>",
    "<a@[127.0.0.1]>",
    '<"quoted local"@alpha.test>',
    "<@relay.test:bob@alpha.test>",
    "< bob@alpha.test >",
    "<bob(comment)@alpha.test>",
    "<>",
    "<bob>",
    "<@alpha.test>",
    "<bob@>",
    "bob@alpha.test",
    "<bob@alpha.test",
    "<bøb@alpha.test>",
    "<bob@alpha.test>SIZE=1",
    "<bob@alpha.test> \t SIZE=1",
    "<bob@alpha.test> (comment) SIZE=1",
    "<bob@alpha.test>(comment)",
    "<" + "x" * 70 + "@alpha.test>",
]


def outcome(parse, session: SMTP, arg: str) -> object:
    try:
        return parse(session, arg)
    except Exception as exc:  # the email package's parser crashes on some garbage: so must we, then
        return type(exc)


def both(arg: str, local_part_limit: int = 0) -> tuple[object, object]:
    session = ReceptionSMTP.__new__(ReceptionSMTP)  # _getaddr needs no connection state
    session.local_part_limit = local_part_limit
    return outcome(ReceptionSMTP._getaddr, session, arg), outcome(SMTP._getaddr, session, arg)


def test_fast_path_agrees_with_aiosmtpd() -> None:
    for arg in CASES:
        ours, theirs = both(arg)
        assert ours == theirs, arg
        ours, theirs = both(arg, local_part_limit=64)
        assert ours == theirs, arg


def random_path(rng: random.Random) -> str:
    """Mostly plausible paths with the odd character that must send them to the full parser."""

    def part(pieces: str, odd: str) -> str:
        return "".join(rng.choice(pieces if rng.random() < 0.9 else odd) for _ in range(rng.randint(0, 6)))

    local = part("ab1.+-'", '"() \\@<:[')
    domain = part("ab1.-", "[]() @<>_")
    suffix = rng.choice(["", " SIZE=1", "(c)", " (c) X", "\tX=1", ">"])
    return f"<{local}@{domain}>{suffix}"


def test_fast_path_agrees_with_aiosmtpd_on_random_paths() -> None:
    rng = random.Random(5321)
    for _ in range(5000):
        arg = random_path(rng)
        ours, theirs = both(arg)
        assert ours == theirs, arg
