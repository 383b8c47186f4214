"""One login, start to end: throttle, look up, verify the password, upgrade an old hash.

Every failure looks the same from outside (`ok: false`, nothing else) and costs one hash check: an
unknown user is checked against a dummy hash, a disabled user against their real one. While the throttle
delays the login (see throttle.py) nothing is checked at all. A good login costs one hash check and three Redis
round trips (throttle in, user record, throttle out), plus a fourth, and a second hash, the one time an
outdated hash is replaced. A login that succeeded lately with the same password against the same stored
hash skips the hash check (see login_cache.py); the throttle and the user record are read all the same.
"""

import contextlib
import logging

from redis.exceptions import RedisError

from services.auth.addresses import InvalidAddress, normalize_address
from services.auth.directory import Directory
from services.auth.login_cache import LoginCache
from services.auth.passwords import Passwords
from services.auth.throttle import Throttle
from shared.models import VerifyRequest, VerifyResult

log = logging.getLogger(__name__)


def canonical_username(username: str) -> tuple[str, bool]:
    """(the name to throttle and look up, whether it is a valid address at all)."""
    try:
        return normalize_address(username), True
    except InvalidAddress:
        # Still throttled under a stable spelling, and still costs a hash check like any other name.
        return username.strip().lower(), False


class Logins:
    def __init__(
        self,
        directory: Directory,
        passwords: Passwords,
        throttle: Throttle,
        cache: LoginCache | None = None,
    ) -> None:
        self.directory = directory
        self.passwords = passwords
        self.throttle = throttle
        self.cache = cache or LoginCache(0)

    async def verify(self, request: VerifyRequest) -> VerifyResult:
        username, valid = canonical_username(request.username)
        fields = {"username": username, "client_ip": request.client_ip, "auth_service": request.service}
        attempt = self.throttle.attempt(username, request.client_ip)
        retry_after_s = await self.throttle.begin(attempt)
        if retry_after_s is not None:
            log.warning("login throttled", extra={**fields, "retry_after_s": retry_after_s})
            return VerifyResult(ok=False, throttled=True, retry_after_s=retry_after_s)

        try:
            user = await self.directory.get_user(username) if valid else None
            cached = (
                user is not None
                and user.enabled
                and self.cache.verified(username, request.password, user.password_hash)
            )
            if cached:
                matches, new_hash = True, None
            else:
                matches, new_hash = await self.passwords.verify(
                    request.password, user.password_hash if user else None
                )
        except BaseException:
            # Free the attempt's place now rather than after CHECK_EXPIRY_MS: others may be waiting for it.
            with contextlib.suppress(RedisError):
                await self.throttle.end(attempt, ok=None)
            raise
        if user is None or not matches or not user.enabled:
            await self.throttle.end(attempt, ok=False)
            log.info("login failed", extra=fields)
            return VerifyResult(ok=False)

        await self.throttle.end(attempt, ok=True)
        current_hash = user.password_hash
        if new_hash is not None and await self.directory.replace_hash(
            user.address, user.password_hash, new_hash
        ):
            current_hash = new_hash
            log.info(
                "password hash upgraded",
                extra={**fields, "scheme": self.passwords.context.identify(new_hash)},
            )
        if not cached:
            self.cache.remember(username, request.password, current_hash)
        log.info("login ok", extra={**fields, "cached": cached})
        return VerifyResult(ok=True, address=user.address)
