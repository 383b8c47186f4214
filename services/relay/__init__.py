"""The relay: delivers mail for other domains to their MX servers, retries, and bounces.

Read in this order: `__main__` (wiring) → `handler` (one envelope: resolve, deliver, then defer/bounce/finish
in one transaction) → `mx` (where to send) → `delivery` / `smtp_session` (the SMTP client) → `connection_cache` (idle connections kept
for the next message) → `sent_record`
(recipients a remote accepted, so a crash does not send twice) → `retry` (the schedule and the Redis sorted
set that holds deferred mail).
"""
