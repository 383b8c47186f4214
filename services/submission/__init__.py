"""SMTP reception on aiosmtpd, one package in two roles (YUBIN_SMTP_ROLE):

- submission (587, RFC 6409): AUTH required; mail from the user's own address to anyone.
- mx (25, RFC 5321): no AUTH; mail from anyone to existing mailboxes in our domains.

Reading order:
- `server`: listen, build a session per connection, shut down gracefully (`connections`, `tls`).
- `session`: the SMTP verbs (one coroutine each), limits and timers, enhanced status codes.
- `handler`: MAIL and RCPT decided by the role's policy, DATA stored.
- `mx_policy` / `submission_policy` (on `policy`, `local_domains`, `addresses`): who may send what where.
- `message_data`: the strict DATA reader (bare CR/LF, SMTP smuggling, size and line limits).
- `acceptance` + `headers`: Received / Message-ID / Date, then one MULTI that stores and publishes.
- `replies`: every reply text, with its RFC.
"""
