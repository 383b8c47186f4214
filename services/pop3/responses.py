"""Every fixed line the POP3 server sends, with the RFC section that defines it.

Status indicators are "+OK" and "-ERR" (RFC 1939 §3). Extended response codes in square brackets follow the
"-ERR" (RFC 2449 §8): a client uses them to decide whether to ask the user for a new password ([AUTH]),
to try again later without bothering the user ([SYS/TEMP], [IN-USE]) or to wait ([LOGIN-DELAY]).
"""

# RFC 1939 §4: the greeting. No APOP timestamp: only password hashes are stored, APOP needs the cleartext.
GREETING = "+OK Yubin POP3 server ready"

# RFC 1939 §5 (QUIT in the AUTHORIZATION state) and §6 (QUIT → UPDATE state).
BYE = "+OK Yubin POP3 server signing off"

# RFC 1939 §3: unknown commands and commands not valid in the current state get a negative answer.
ERR_UNKNOWN_COMMAND = "-ERR Unknown command"
ERR_WRONG_STATE = "-ERR Command not valid in this state"
ERR_SYNTAX = "-ERR Syntax error in arguments"
# RFC 2449 §4: a command line is at most 255 octets including the CRLF.
ERR_LINE_TOO_LONG = "-ERR Line too long"
ERR_TOO_MANY_BAD = "-ERR Too many bad commands, closing connection"
ERR_TOO_MANY_AUTH_COMMANDS = "-ERR Too many commands without logging in, closing connection"
ERR_TOO_MANY_AUTH_FAILURES = "-ERR [AUTH] Too many failed logins, closing connection"
ERR_IDLE = "-ERR Autologout; idle for too long"  # RFC 1939 §3: the inactivity autologout timer
ERR_SHUTDOWN = "-ERR [SYS/TEMP] Server shutting down, try again later"
ERR_TOO_MANY_CONNECTIONS = "-ERR [SYS/TEMP] Too many connections, try again later"

# RFC 1939 §7 (USER/PASS), RFC 2449 §8.1.1: [AUTH] means "the credentials are wrong", the same words
# whether the user exists or not, so the answer does not reveal which addresses exist.
OK_USER = "+OK Send your password"
ERR_USER_FIRST = "-ERR Send USER first"
ERR_AUTH_FAILED = "-ERR [AUTH] Authentication failed"
# RFC 2595 §2 (and Dovecot's disable_plaintext_auth): no cleartext passwords before STLS.
ERR_PLAINTEXT_DISALLOWED = (
    "-ERR [AUTH] Plaintext authentication disallowed on non-secure connections, use STLS"
)
# RFC 2449 §8.1.2 [SYS/TEMP]: "likely temporary ... no need to alert the user unless the problem persists".
# Used for throttling after too many failed logins: [LOGIN-DELAY] (RFC 2449 §8.1.2) is about a policy on
# the frequency of *successful* logins announced with the LOGIN-DELAY capability, which we do not have.
ERR_THROTTLED = "-ERR [SYS/TEMP] Too many failed logins, try again later"
ERR_AUTH_UNAVAILABLE = "-ERR [SYS/TEMP] Authentication service unavailable, try again later"
# RFC 2449 §8.1.1 [IN-USE]: "the maildrop is already locked".
ERR_IN_USE = "-ERR [IN-USE] Mailbox is in use by another POP3 session"
ERR_MAILDROP_UNAVAILABLE = "-ERR [SYS/TEMP] Mailbox unavailable, try again later"
ERR_LOCK_LOST = "-ERR [SYS/TEMP] Mailbox lock lost, no messages deleted, closing connection"

# RFC 5034 §4: AUTH, the "+ " continuation, "*" to cancel.
AUTH_CONTINUE = "+ "
ERR_AUTH_MECHANISM = "-ERR [AUTH] Unsupported authentication mechanism"
ERR_AUTH_CANCELLED = "-ERR [AUTH] Authentication cancelled"
ERR_AUTH_BASE64 = "-ERR [AUTH] Invalid base64 data"

# RFC 2595 §4: STLS.
OK_STLS = "+OK Begin TLS negotiation"
ERR_STLS_UNAVAILABLE = "-ERR STLS not available"
ERR_STLS_ACTIVE = "-ERR TLS already active"

# RFC 1939 §5: message numbers that do not exist or are marked deleted.
ERR_NO_SUCH_MESSAGE = "-ERR No such message"
ERR_MESSAGE_DELETED = "-ERR Message is deleted"
ERR_MESSAGE_GONE = "-ERR [SYS/TEMP] Message is no longer available"
# RFC 1939 §6: "-ERR some deleted messages not removed".
ERR_UPDATE_FAILED = "-ERR [SYS/TEMP] Some deleted messages not removed"

# RFC 2449 §6.9: IMPLEMENTATION.
IMPLEMENTATION = "Yubin"
