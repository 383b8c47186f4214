"""The MAIL FROM / RCPT TO grammar (RFC 5321 §4.1.2, RFC 6531), as a table of valid and invalid forms."""

import pytest

from services.submission.paths import (
    KeywordError,
    PathSyntaxError,
    parse_mail_argument,
    parse_rcpt_argument,
)

# argument of MAIL → (address recorded, parameters); "" is the null reverse-path
VALID_MAIL = [
    ("FROM:<bob@alpha.test>", "bob@alpha.test", {}),
    ("from:<bob@alpha.test>", "bob@alpha.test", {}),
    ("FROM: <bob@alpha.test>", "bob@alpha.test", {}),  # tolerated, as Postfix does
    ("FROM:<Bob@ALPHA.Test>", "Bob@alpha.test", {}),  # only the domain is case-blind
    ("FROM:<>", "", {}),
    ("FROM:<> BODY=8BITMIME", "", {"BODY": "8BITMIME"}),
    ("FROM:<bob@alpha.test> SIZE=4096 BODY=8BITMIME", "bob@alpha.test", {"SIZE": "4096", "BODY": "8BITMIME"}),
    ("FROM:<bob@alpha.test> \t SIZE=1  ", "bob@alpha.test", {"SIZE": "1"}),
    ("FROM:<bob@alpha.test> smtputf8", "bob@alpha.test", {"SMTPUTF8": None}),
    ("FROM:<first.last+tag@mx.alpha.test>", "first.last+tag@mx.alpha.test", {}),
    ("FROM:<o'brien!x%y@alpha.test>", "o'brien!x%y@alpha.test", {}),
    ('FROM:<"quoted local"@alpha.test>', '"quoted local"@alpha.test', {}),
    ('FROM:<"a\\"b"@alpha.test>', '"a\\"b"@alpha.test', {}),
    ("FROM:<@relay.test:bob@alpha.test>", "bob@alpha.test", {}),  # source route ignored (§4.1.1.3)
    ("FROM:<@a.test,@b.test:bob@alpha.test>", "bob@alpha.test", {}),
    ("FROM:<bob@[127.0.0.1]>", "bob@[127.0.0.1]", {}),
    ("FROM:<bob@[IPv6:2001:DB8::1]>", "bob@[IPv6:2001:db8::1]", {}),
    ("FROM:<bøb@alpha.test> SMTPUTF8", "bøb@alpha.test", {"SMTPUTF8": None}),
    ("FROM:<bob@Bücher.test>", "bob@xn--bcher-kva.test", {}),  # U-label → the A-label we store
    ("FROM:<" + "x" * 64 + "@alpha.test>", "x" * 64 + "@alpha.test", {}),
]

INVALID_PATHS = [
    "",
    "bob@alpha.test",  # no brackets
    "<bob@alpha.test",  # unbalanced
    "bob@alpha.test>",
    "<<bob@alpha.test>>",
    "<bob@alpha.test>>",
    "<bob@alpha.test>junk",  # junk glued to the closing bracket
    "<bob@alpha.test>SIZE=1",
    "<bob@alpha.test> (comment)",
    "<bob@alpha.test> =1",
    "<bob@alpha.test> SIZE=",
    "<bob@alpha.test> SIZE=1 SIZE=2",
    "<bob@alpha.test> X=a=b",
    "< bob@alpha.test>",  # no white space inside the brackets
    "<bob@alpha.test >",
    "<bob(comment)@alpha.test>",
    "<bob>",
    "<@alpha.test>",
    "<bob@>",
    "<bob@@alpha.test>",
    "<a..b@alpha.test>",
    "<.a@alpha.test>",
    "<a.@alpha.test>",
    "<a@alpha..test>",
    "<a@-alpha.test>",
    "<a@alpha-.test>",
    "<a@alpha.test.>",
    "<a@alpha_test>",
    "<a b@alpha.test>",
    '<"unterminated@alpha.test>',
    '<"a"b@alpha.test>',
    "<a@[300.0.0.1]>",
    "<a@[IPv6:zz::1]>",
    "<a@[not a literal]>",
    "<@relay.test,bob@alpha.test>",  # source route without its colon
    "<@relay.test:>",
    "<a\x00b@alpha.test>",
    "<a\udcffb@alpha.test>",  # a byte that was not UTF-8 (surrogateescape)
    "<a\x85b@alpha.test>",  # C1 control
    "<" + "x" * 65 + "@alpha.test>",  # local part over 64 octets
    "<a@" + ("d" * 60 + ".") * 5 + "test>",  # path over 256 octets
    "<Postmaster>",  # the bare postmaster is for RCPT only
]


@pytest.mark.parametrize(("arg", "address", "parameters"), VALID_MAIL)
def test_valid_reverse_paths(arg: str, address: str, parameters: dict) -> None:
    path = parse_mail_argument(arg)
    assert (path.mailbox.address if path.mailbox else "") == address
    assert path.parameters == parameters
    assert not path.postmaster


@pytest.mark.parametrize(
    ("arg", "address", "parameters"), [case for case in VALID_MAIL if case[1]], ids=lambda v: str(v)
)
def test_valid_forward_paths(arg: str, address: str, parameters: dict) -> None:
    path = parse_rcpt_argument("TO:" + arg.partition(":")[2])
    assert path.mailbox is not None and path.mailbox.address == address
    assert path.parameters == parameters


@pytest.mark.parametrize("text", INVALID_PATHS)
def test_invalid_reverse_paths(text: str) -> None:
    with pytest.raises(PathSyntaxError):
        parse_mail_argument("FROM:" + text)


@pytest.mark.parametrize("text", [*INVALID_PATHS[:-1], "<>", "<> SIZE=1"])
def test_invalid_forward_paths(text: str) -> None:
    with pytest.raises(PathSyntaxError):
        parse_rcpt_argument("TO:" + text)


@pytest.mark.parametrize("arg", ["TO:<Postmaster>", "to:<postmaster>", "TO:<POSTMASTER>", "TO: <PostMaster>"])
def test_bare_postmaster_is_a_forward_path(arg: str) -> None:
    path = parse_rcpt_argument(arg)
    assert path.postmaster and path.mailbox is None and not path.is_null


def test_postmaster_with_a_domain_is_an_ordinary_mailbox() -> None:
    path = parse_rcpt_argument("TO:<Postmaster@Alpha.test>")
    assert not path.postmaster and path.mailbox is not None
    assert path.mailbox.address == "Postmaster@alpha.test"


@pytest.mark.parametrize(
    "arg", ["<bob@alpha.test>", "FROM<bob@alpha.test>", "FROM :<bob@alpha.test>", "TO:<a@b.c>"]
)
def test_mail_needs_its_keyword(arg: str) -> None:
    with pytest.raises(KeywordError):
        parse_mail_argument(arg)


def test_ascii_flag_covers_the_path_only() -> None:
    assert not parse_rcpt_argument("TO:<bøb@alpha.test>").ascii
    assert not parse_rcpt_argument("TO:<bob@bücher.test>").ascii
    assert parse_rcpt_argument("TO:<bob@alpha.test>").ascii


def test_null_path_flag() -> None:
    assert parse_mail_argument("FROM:<>").is_null
    assert not parse_mail_argument("FROM:<a@alpha.test>").is_null
