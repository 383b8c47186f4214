"""`make bench`: throughput and latency of the two-site lab (and of the reference Postfix + Dovecot lab)."""
