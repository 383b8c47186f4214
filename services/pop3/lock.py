"""One POP3 session per maildrop across all replicas: a lock in Redis (RFC 1939 §8 asks for an exclusive
lock on the maildrop; RFC 2449 §8.1.1 answers a second session with [IN-USE]).

`SET key token NX PX ttl` takes it; a random token says whose it is, so a session can only renew or release
its own lock (compare-and-set in Lua: a session whose lock expired while it was stuck must not delete the
lock of the session that came after it). While the session lives the lock is renewed every third of its
TTL; a replica that dies stops renewing and the lock frees itself after the TTL.
"""

import asyncio
import logging
import secrets

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

KEY_PREFIX = "yubin:pop3:lock:"

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


def lock_key(address: str) -> str:
    return f"{KEY_PREFIX}{address}"


class MaildropLocks:
    """Makes the Redis lock of one maildrop: what a session is given to lock with."""

    def __init__(self, redis: Redis, ttl_ms: int) -> None:
        self._redis = redis
        self.ttl_ms = ttl_ms

    def for_address(self, address: str) -> "MaildropLock":
        return MaildropLock(self._redis, address, self.ttl_ms)


class MaildropLock:
    def __init__(self, redis: Redis, address: str, ttl_ms: int) -> None:
        self._redis = redis
        self.key = lock_key(address)
        self.ttl_ms = ttl_ms
        self._token = secrets.token_hex(16).encode()
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self.held = False

    async def acquire(self) -> bool:
        """True if the lock is ours now; False if another session holds it. Raises RedisError."""
        self.held = bool(await self._redis.set(self.key, self._token, nx=True, px=self.ttl_ms))
        return self.held

    async def renew(self) -> bool:
        """Extend the lock; False if it is no longer ours (it expired and maybe someone else took it)."""
        self.held = bool(await self._renew(keys=[self.key], args=[self._token, self.ttl_ms]))
        return self.held

    async def release(self) -> None:
        if not self.held:
            return
        self.held = False
        try:
            await self._release(keys=[self.key], args=[self._token])
        except RedisError as exc:
            # It expires by itself after the TTL; until then the user sees [IN-USE].
            log.warning("could not release maildrop lock", extra={"error": str(exc)})

    async def keep_alive(self, lost: asyncio.Event) -> None:
        """Renew until cancelled; set `lost` if the lock stops being ours. A Redis hiccup is retried: the
        lock only expires if Redis stays unreachable for most of the TTL."""
        interval = self.ttl_ms / 3000
        while True:
            await asyncio.sleep(interval)
            try:
                if not await self.renew():
                    log.error("maildrop lock lost", extra={"key": self.key})
                    lost.set()
                    return
            except RedisError as exc:
                log.warning("could not renew maildrop lock", extra={"error": str(exc)})
