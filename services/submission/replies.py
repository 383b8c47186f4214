"""Every SMTP reply the reception service sends, with the RFC that defines it.

Replies carry an enhanced status code (RFC 2034, codes from RFC 3463) except the greeting and the
EHLO/HELO answer, which RFC 2034 §3 exempts, and the 334/354 continuation prompts.
"""

import re

# --- Connection (RFC 5321 §3.1, §4.2.2, §4.5.3.2) ---
TOO_MANY_CONNECTIONS = "421 4.7.0 {host} Error: too many connections, try again later"
# Postfix's wording for both smtpd_client_connection_count_limit and smtpd_client_connection_rate_limit.
TOO_MANY_CONNECTIONS_FROM = "421 4.7.0 {host} Error: too many connections from {address}"
IDLE_TIMEOUT = "421 4.4.2 {host} Error: timeout exceeded"
SESSION_TOO_LONG = "421 4.4.2 {host} Error: session time limit exceeded"
TOO_MANY_ERRORS = "421 4.7.0 {host} Error: too many errors"
SHUTTING_DOWN = "421 4.3.2 {host} Service shutting down, try again later"

# --- Generic (RFC 5321 §4.2.4, RFC 3463 X.5.x protocol status) ---
OK = "250 2.0.0 Ok"
BYE = "221 2.0.0 Bye"
SYNTAX_EHLO = "501 5.5.4 Syntax: EHLO hostname"
SYNTAX_HELO = "501 5.5.4 Syntax: HELO hostname"
SYNTAX_DATA = "501 5.5.4 Syntax: DATA"
SEND_HELO_FIRST = "503 5.5.1 Error: send HELO/EHLO first"
SEND_EHLO_FIRST = "503 5.5.1 Error: send EHLO first"
NEED_RCPT = "503 5.5.1 Error: need RCPT command"
NO_VALID_RECIPIENTS = "554 5.5.1 Error: no valid recipients"  # RFC 2920 §3.1: DATA after failed RCPTs
NOT_IMPLEMENTED = "502 5.5.1 Error: command not implemented"
# RFC 3463 X.3.1 "mail system full": the listener's memory budget for message data is used up.
INSUFFICIENT_STORAGE = "452 4.3.1 Error: insufficient system storage"
TEMPORARY_FAILURE = "451 4.3.0 Error: temporary local problem, try again later"  # RFC 3463 X.3.0

# --- VRFY / EXPN: never reveal whether a mailbox exists (RFC 5321 §3.5.3, §7.3) ---
VRFY_CANNOT = "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery"
VRFY_SYNTAX = "501 5.5.4 Syntax: VRFY <address>"
EXPN_DISABLED = "502 5.5.1 Error: EXPN not available"

# --- AUTH (RFC 4954 §6) ---
AUTH_OK = "235 2.7.0 Authentication successful"
AUTH_FAILED = "535 5.7.8 Error: authentication failed"
AUTH_THROTTLED = "454 4.7.0 Error: too many failed logins, try again later"
AUTH_UNAVAILABLE = "454 4.7.0 Temporary authentication failure"
AUTH_NEEDS_TLS = "538 5.7.11 Encryption required for requested authentication mechanism"
AUTH_NOT_OFFERED = "502 5.5.1 Error: authentication not enabled"
AUTH_ALREADY = "503 5.5.1 Error: already authenticated"
AUTH_IN_TRANSACTION = "503 5.5.1 Error: MAIL transaction in progress"
AUTH_SYNTAX = "501 5.5.4 Syntax: AUTH mechanism [initial-response]"
AUTH_BAD_BASE64 = "501 5.5.2 Error: cannot decode response"
AUTH_CANCELLED = "501 5.7.0 Error: authentication cancelled"  # RFC 4954 §4: the client sent "*"
AUTH_MECHANISM = "504 5.5.4 Error: unsupported authentication mechanism"
AUTH_REQUIRED = "530 5.7.0 Authentication required"

# --- MAIL (RFC 5321 §4.1.1.2, RFC 3463 X.1.x address status) ---
SENDER_OK = "250 2.1.0 Ok"
MAIL_SYNTAX = "501 5.5.4 Syntax: MAIL FROM:<address> [SP <mail-parameters>]"
NEED_MAIL = "503 5.5.1 Error: need MAIL command"
NESTED_MAIL = "503 5.5.1 Error: nested MAIL command"
PARAMETERS_WITHOUT_EHLO = "501 5.5.4 Error: parameters need EHLO"
PARAMETERS_UNKNOWN = "555 5.5.4 Error: {verb} parameters not recognized or not implemented"  # §4.1.1.11
BODY_UNSUPPORTED = "501 5.5.4 Error: BODY can only be one of 7BIT, 8BITMIME"
SMTPUTF8_VALUE = "501 5.5.4 Error: SMTPUTF8 takes no arguments"
SIZE_SYNTAX = "501 5.5.4 Error: SIZE needs a number of octets"
SIZE_TOO_BIG = "552 5.3.4 Error: message size exceeds fixed maximum message size"  # RFC 1870 §6.1
SENDER_SYNTAX = "501 5.1.7 Error: bad sender address syntax"
SENDER_NOT_OWNED = "553 5.7.1 <{address}>: Sender address rejected: not owned by user {user}"
NULL_SENDER_REFUSED = "553 5.7.1 Error: the null sender is not allowed on submission"
UTF8_ADDRESS_NEEDS_SMTPUTF8 = "553 5.6.7 Error: non-ASCII address needs SMTPUTF8"  # RFC 6531 §3.7.4.1

# --- RCPT (RFC 5321 §4.1.1.3, §4.5.3.1.10) ---
RECIPIENT_OK = "250 2.1.5 Ok"
RECIPIENT_SYNTAX = "501 5.1.3 Error: bad recipient address syntax"
ADDRESS_LITERAL = "550 5.1.2 <{address}>: Recipient address rejected: address literals are not routed"
RCPT_SYNTAX = "501 5.5.4 Syntax: RCPT TO:<address> [SP <rcpt-parameters>]"
ALIAS_LOOP = "550 5.4.6 <{address}>: Recipient address rejected: alias expands to no recipient (loop?)"
TOO_MANY_RECIPIENTS = "452 4.5.3 Error: too many recipients"
# Pipelining clients send all RCPTs before they see a 452; that is expected (RFC 5321 §4.5.3.1.10) and
# not counted as an error, up to as many again as the limit (Postfix: smtpd_recipient_overshoot_limit).
TOO_MANY_RECIPIENTS_OVERSHOOT = "452 4.5.3 Error: too many recipients, and still more"
RELAY_DENIED = "554 5.7.1 <{address}>: Relay access denied"
UNKNOWN_USER = "550 5.1.1 <{address}>: Recipient address rejected: User unknown"
LOOKUP_FAILED = "451 4.3.0 <{address}>: Temporary lookup failure, try again later"

# --- DATA (RFC 5321 §4.1.1.4, §4.5.2, §6.3; RFC 1870) ---
START_DATA = "354 End data with <CR><LF>.<CR><LF>"
QUEUED = "250 2.0.0 Ok: queued as {queue_id}"
MESSAGE_TOO_BIG = "552 5.3.4 Error: message size exceeds fixed limit"
LINE_TOO_LONG = "500 5.5.2 Error: line too long (RFC 5321 §4.5.3.1.6)"
# Postfix's wording for smtpd_forbid_bare_newline = reject; RFC 5321 §2.3.8 allows CR and LF only as CRLF.
BARE_LF = "550 5.5.2 Error: bare <LF> received"
BARE_CR = "550 5.5.2 Error: bare <CR> received"
MAIL_LOOP = "554 5.4.6 Error: too many hops (mail loop)"  # RFC 5321 §6.3, RFC 3463 X.4.6

MAX_RECEIVED_HEADERS = 50
"""More Received headers than this is a mail loop (Postfix's hopcount_limit has the same default)."""

# RFC 3463 class defaults for the replies aiosmtpd composes itself without an enhanced code (syntax
# errors from its parser, "503 need MAIL", "500 command not recognized", "221 Bye" ...).
_DEFAULT_ENHANCED = {
    "211": "2.0.0",
    "214": "2.0.0",
    "220": "2.0.0",
    "221": "2.0.0",
    "235": "2.7.0",
    "250": "2.0.0",
    "252": "2.5.0",
    "421": "4.7.0",
    "450": "4.2.0",
    "451": "4.3.0",
    "452": "4.5.3",
    "454": "4.7.0",
    "500": "5.5.2",
    "501": "5.5.4",
    "502": "5.5.1",
    "503": "5.5.1",
    "504": "5.5.4",
    "530": "5.7.0",
    "535": "5.7.8",
    "538": "5.7.11",
    "550": "5.0.0",
    "552": "5.3.4",
    "553": "5.1.3",
    "554": "5.0.0",
    "555": "5.5.4",
}
_HAS_ENHANCED = re.compile(r"^\d{3}[ -][245]\.\d{1,3}\.\d{1,3}(?: |$)")
_REPLY = re.compile(r"^(\d{3})([ -])(.*)$", re.DOTALL)


def with_enhanced_code(reply: str) -> str:
    """Add the RFC 3463 class default to a reply that lacks an enhanced code (3xx prompts stay as they are)."""
    if _HAS_ENHANCED.match(reply):
        return reply
    match = _REPLY.match(reply)
    if match is None:
        return reply
    code, sep, text = match.groups()
    enhanced = _DEFAULT_ENHANCED.get(code)
    if enhanced is None:
        if code[0] in "45":
            enhanced = f"{code[0]}.0.0"
        else:
            return reply
    return f"{code}{sep}{enhanced} {text}".rstrip()


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def without_controls(reply: str) -> str:
    """A reply line with every control character as "?". aiosmtpd echoes the client's command word in
    `500 Error: command "..." not recognized`, and that word may hold a CR: sent as is, the reply line
    would carry a bare CR (RFC 5321 §2.3.8), which a client may take for the end of the line."""
    return _CONTROL.sub("?", reply)


NOT_COUNTED = (TOO_MANY_RECIPIENTS, INSUFFICIENT_STORAGE)  # the second is our shortage, not theirs


def counts_as_error(reply: str) -> bool:
    """Whether a reply counts toward the per-session error limit (the closing 421 itself does not)."""
    return reply[:1] in ("4", "5") and not reply.startswith("421") and reply not in NOT_COUNTED
