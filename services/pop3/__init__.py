"""The POP3 server (RFC 1939 + RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH PLAIN) on the users' Maildirs.

Read top-down: `server.py` (listener, limits, shutdown) → `session.py` (the state machine, one method per
command) → `maildrop.py` (the Maildir snapshot, deletions in UPDATE) and `lock.py` (one session per
maildrop across replicas) → `wire.py` (lines in, dot-stuffed responses out) → `responses.py`.
"""
