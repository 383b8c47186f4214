"""Password hashing: argon2id for new hashes; bcrypt and sha512-crypt hashes (imported from older systems)
still verify and are replaced by argon2 on the next successful login.

Hashing runs in worker threads (argon2-cffi releases the GIL) behind a semaphore, so a login flood costs
at most `auth_hash_concurrency` times (one CPU core + argon2 memory) and never blocks the event loop.
"""

import asyncio
import logging
import secrets

from passlib.context import CryptContext

from shared.config.auth import AuthSettings

log = logging.getLogger(__name__)

SCHEMES = ["argon2", "bcrypt", "sha512_crypt"]


class Passwords:
    def __init__(self, settings: AuthSettings) -> None:
        self.context = CryptContext(
            schemes=SCHEMES,
            default="argon2",
            # Every scheme but the default is deprecated, and argon2 hashes with other cost parameters
            # count as outdated too: `verify_and_update` hands back a fresh hash for all of them.
            deprecated="auto",
            argon2__type="ID",
            argon2__time_cost=settings.auth_argon2_time_cost,
            argon2__memory_cost=settings.auth_argon2_memory_kib,
            argon2__parallelism=settings.auth_argon2_parallelism,
        )
        self._slots = asyncio.Semaphore(settings.auth_hash_concurrency)
        # Unknown users are checked against this, so they cost the same time as known ones.
        self._dummy_hash = self.context.hash(secrets.token_urlsafe(24))
        # How many hashes were verified: lets tests see that throttled logins check nothing and that
        # unknown users are checked like known ones, without measuring time.
        self.verifications = 0

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self.context.hash, password)

    async def verify(self, password: str, stored_hash: str | None) -> tuple[bool, str | None]:
        """Check `password` against `stored_hash` (None: no such user, check the dummy and fail).

        Returns (matches, replacement hash if the stored one uses an outdated scheme or parameters).
        """
        async with self._slots:
            self.verifications += 1
            if stored_hash is None:
                await asyncio.to_thread(self.context.verify, password, self._dummy_hash)
                return False, None
            try:
                return await asyncio.to_thread(self.context.verify_and_update, password, stored_hash)
            except ValueError:
                # Not a hash any scheme recognizes (hand-edited Redis?): nobody can log in with it.
                log.error("stored password hash is not in a known format")
                await asyncio.to_thread(self.context.verify, password, self._dummy_hash)
                return False, None
