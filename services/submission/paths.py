"""The argument of `MAIL FROM:` and `RCPT TO:`, by the grammar of RFC 5321 §4.1.2 (with RFC 6531 UTF-8).

    Reverse-path = Path / "<>"                       (MAIL only)
    Forward-path = Path / "<Postmaster>"             (RCPT only; the bare postmaster of §4.5.1)
    Path         = "<" [ A-d-l ":" ] Mailbox ">"     (the source route A-d-l is accepted and ignored,
                                                      as §4.1.1.3 and appendix C say)
    Mailbox      = Local-part "@" ( Domain / address-literal )
    Local-part   = Dot-string / Quoted-string
    parameters   = esmtp-keyword ["=" esmtp-value], separated by spaces

The one place that says what a path looks like: no comments, no white space inside the brackets, no
missing or unbalanced brackets, nothing glued to the closing `>`. What we tolerate beyond the letter of the
RFC, as Postfix does by default: white space between `FROM:`/`TO:` and the path, several spaces or tabs
between parameters, and trailing white space.

Domains are returned lower-case; a UTF-8 domain (SMTPUTF8) as its IDNA A-label, the form the directory
stores. Local parts stay as written (quotes included), so the policies can see quoted routing tricks.
"""

import ipaddress
import re
from dataclasses import dataclass

import idna

from services.submission.addresses import Mailbox

MAX_PATH = 256  # RFC 5321 §4.5.3.1.3, brackets included
MAX_LOCAL = 64  # §4.5.3.1.1
MAX_DOMAIN = 255  # §4.5.3.1.2

# UTF8-non-ascii (RFC 6531 §3.3) without C1 controls and without surrogates (aiosmtpd decodes invalid
# UTF-8 with surrogateescape, so a surrogate here is a byte that was not UTF-8).
_U = "\u00a0-\ud7ff\ue000-\U0010ffff"
_ATOM = rf"[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~\-{_U}]+"
_DOT_STRING = rf"{_ATOM}(?:\.{_ATOM})*"
_QUOTED = rf'"(?:[\x20\x21\x23-\x5b\x5d-\x7e{_U}]|\\[\x20-\x7e])*"'
_LABEL = rf"[A-Za-z0-9{_U}](?:[A-Za-z0-9\-{_U}]*[A-Za-z0-9{_U}])?"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*"
_LITERAL = r"\[[^\[\]\\\s]+\]"  # checked further in _address_literal
_ROUTE = rf"@{_DOMAIN}(?:,@{_DOMAIN})*:"
_PATH = re.compile(rf"<(?:{_ROUTE})?(?P<local>{_DOT_STRING}|{_QUOTED})@(?P<domain>{_DOMAIN}|{_LITERAL})>")
_POSTMASTER = re.compile(r"<postmaster>", re.IGNORECASE)
_PARAMETER = re.compile(rf"(?P<key>[A-Za-z0-9][A-Za-z0-9-]*)(?:=(?P<value>[\x21-\x3c\x3e-\x7e{_U}]+))?")
_SPACE = re.compile(r"[ \t]+")
_GENERAL_LITERAL = re.compile(r"[A-Za-z0-9-]*[A-Za-z0-9]:[\x21-\x5a\x5e-\x7e]+")


class PathSyntaxError(ValueError):
    """The path, or what follows it, is not RFC 5321 syntax (501 5.1.7 for MAIL, 501 5.1.3 for RCPT).

    Junk after the path counts as a bad path rather than as a bad parameter: `<a@b>x`, `<a@b> (comment)`
    and `<a@b> @` are what a broken or hostile client sends, not ESMTP."""


class KeywordError(ValueError):
    """The command does not start with `FROM:` / `TO:` (501 5.5.4)."""


@dataclass(frozen=True)
class PathArgument:
    """A parsed `FROM:<...> params` or `TO:<...> params`."""

    mailbox: Mailbox | None
    """None for the null reverse-path `<>` and for the bare `<Postmaster>`."""
    postmaster: bool
    """The bare `RCPT TO:<Postmaster>` (RFC 5321 §4.5.1): postmaster of our own domain."""
    ascii: bool
    """The path as sent is ASCII (a non-ASCII one needs SMTPUTF8, RFC 6531 §3.4)."""
    parameters: dict[str, str | None]
    """ESMTP parameters, keywords upper-case (value None for a keyword without `=`), in the order given."""

    @property
    def is_null(self) -> bool:
        return self.mailbox is None and not self.postmaster


def parse_mail_argument(arg: str) -> PathArgument:
    """`FROM:<reverse-path> [SP params]` → PathArgument; raises KeywordError or PathSyntaxError."""
    return _parse(_after_keyword(arg, "FROM:"), null_allowed=True, postmaster_allowed=False)


def parse_rcpt_argument(arg: str) -> PathArgument:
    """`TO:<forward-path> [SP params]` → PathArgument (see parse_mail_argument)."""
    return _parse(_after_keyword(arg, "TO:"), null_allowed=False, postmaster_allowed=True)


def _after_keyword(arg: str, keyword: str) -> str:
    if arg[: len(keyword)].upper() != keyword:
        raise KeywordError(keyword)
    return arg[len(keyword) :].lstrip(" \t")


def _parse(text: str, *, null_allowed: bool, postmaster_allowed: bool) -> PathArgument:
    mailbox: Mailbox | None = None
    postmaster = False
    if text.startswith("<>"):
        if not null_allowed:
            raise PathSyntaxError("the null path is for MAIL only")
        end = 2
    elif postmaster_allowed and (bare := _POSTMASTER.match(text)):
        postmaster = True
        end = bare.end()
    else:
        path = _PATH.match(text)
        if path is None or path.end() > MAX_PATH:
            raise PathSyntaxError("not an RFC 5321 path")
        mailbox = _mailbox(path.group("local"), path.group("domain"))
        end = path.end()
    return PathArgument(
        mailbox=mailbox,
        postmaster=postmaster,
        ascii=text[:end].isascii(),
        parameters=_parameters(text[end:]),
    )


def _mailbox(local: str, domain: str) -> Mailbox:
    if len(local.encode("utf-8", "surrogatepass")) > MAX_LOCAL:
        raise PathSyntaxError("local part longer than 64 octets")
    if domain.startswith("["):
        return Mailbox(local=local, domain=_address_literal(domain))
    if len(domain.encode("utf-8", "surrogatepass")) > MAX_DOMAIN:
        raise PathSyntaxError("domain longer than 255 octets")
    if domain.isascii():
        return Mailbox(local=local, domain=domain.lower())
    try:
        return Mailbox(local=local, domain=idna.encode(domain, uts46=True).decode("ascii"))
    except UnicodeError as exc:  # idna.IDNAError and the codec errors it lets through
        raise PathSyntaxError(f"not an internationalized domain name: {exc}") from exc


def _address_literal(literal: str) -> str:
    inner = literal[1:-1]
    try:
        if inner[:5].upper() == "IPV6:":
            return f"[IPv6:{ipaddress.IPv6Address(inner[5:]).compressed}]"
        if inner[:1].isdigit():
            return f"[{ipaddress.IPv4Address(inner)}]"
    except ValueError as exc:
        raise PathSyntaxError("not an address literal") from exc
    if _GENERAL_LITERAL.fullmatch(inner) is None:
        raise PathSyntaxError("not an address literal")
    return literal


def _parameters(rest: str) -> dict[str, str | None]:
    if not rest.strip(" \t"):
        return {}
    if rest[0] not in " \t":
        raise PathSyntaxError("junk after the path")  # `<a@b>x`: nothing may touch the bracket
    parameters: dict[str, str | None] = {}
    for word in _SPACE.split(rest.strip(" \t")):
        match = _PARAMETER.fullmatch(word)
        if match is None:
            raise PathSyntaxError(f"not an ESMTP parameter: {word!r}")
        key = match.group("key").upper()
        if key in parameters:
            raise PathSyntaxError(f"{key} given twice")
        parameters[key] = match.group("value")
    return parameters
