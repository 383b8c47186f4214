"""A short-lived memory of successful password checks, so a mail client polling POP3 every minute does
not pay an argon2 hash (~17 ms of CPU) at every login — what Dovecot's `auth_cache_*` does.

An entry is keyed by HMAC-SHA256(username, password) under a random key made at start-up and never
stored, and holds the stored hash the password was verified against. A login uses an entry only if the
user record it has just read from Redis still carries that same hash (and the user is enabled): a password
change, from any replica of the auth service, makes every older entry miss at once; a deleted user has no
record, so there is nothing to compare. A wrong password has another key and is never found; failures are
never stored. The throttle runs as before around every login, cached or not.

What the TTL trades: while an entry lives, the process's memory holds a fast-to-check (HMAC) witness of
the user's password instead of only the slow argon2 hash, so whoever can read that memory (and the key
beside it) could test guesses at HMAC speed for the users who logged in within the TTL. Longer saves more
hashes for clients that poll less often; 0 turns the cache off.
"""

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict

MAX_ENTRIES = 10_000
"""Oldest entries go first beyond this: the memory is bounded whatever the number of users."""


class LoginCache:
    def __init__(self, ttl_s: float, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[bytes, tuple[float, str]] = OrderedDict()
        self.hits = 0
        """Logins answered from the cache (for tests and the log)."""

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0

    def _digest(self, username: str, password: str) -> bytes:
        # Length-prefixed so ("ab", "c") and ("a", "bc") cannot collide.
        user = username.encode()
        message = len(user).to_bytes(4, "big") + user + password.encode()
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def verified(self, username: str, password: str, stored_hash: str) -> bool:
        """Whether this password was verified against `stored_hash` (the user's current one) lately."""
        if not self.enabled:
            return False
        key = self._digest(username, password)
        entry = self._entries.get(key)
        if entry is None:
            return False
        expires_at, verified_hash = entry
        if time.monotonic() >= expires_at:
            del self._entries[key]
            return False
        if not hmac.compare_digest(verified_hash, stored_hash):
            del self._entries[key]  # the password changed since: this entry can never match again
            return False
        self.hits += 1
        return True

    def remember(self, username: str, password: str, stored_hash: str) -> None:
        """Record a successful check of `password` against `stored_hash`."""
        if not self.enabled:
            return
        key = self._digest(username, password)
        self._entries.pop(key, None)
        self._entries[key] = (time.monotonic() + self.ttl_s, stored_hash)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
