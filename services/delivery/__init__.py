"""Local delivery: envelopes from the LOCAL_DELIVERY stream into the recipients' Maildirs.

Reading order: `__main__` (wiring, shutdown) → `handler.Deliverer.handle` (one stream entry: per recipient
`deliver_one`, then `finish` in one MULTI) → `duplicates` (one copy per Message-ID and recipient) →
`mailbox_files` (the durable write) and `stored_message` (the bytes written) → `retry_queue` (recipients
that must wait: over quota, auth service down).
The file naming and line-ending contract shared with POP3 is in `shared.maildir`.
"""
