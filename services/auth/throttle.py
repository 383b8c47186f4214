"""Login throttling in Redis, per username and per client IP.

Each subject (a username, a client IP) has failures, counted within `auth_failure_window_s`; at its
limit the subject is locked for `auth_lock_s`. While locked, logins are refused before any password is
looked at, so guessing learns nothing, not even whether the right password was among the guesses.

Attempts still being checked count too: a new attempt is refused (retry in a second) while a subject's
failures plus its attempts in progress reach its limit, so a burst of parallel guesses cannot slip past
the limit while the slow hashes are computed. For usernames that bound is exact. A client IP gets
`auth_ip_burst` more, because many users behind one NAT (or a benchmark on 127.0.0.1) do log in at once;
a burst of guesses from one IP overshoots its failure limit by at most that many.

Usernames are counted whether or not such a user exists: an unknown name locks exactly like a real one,
so the lock reveals nothing. A success clears the username's failures but not the IP's: an attacker
owning one account cannot reset the IP's count between guesses at others.

Keys, under `yubin:auth:throttle:<user:NAME | ip:ADDRESS>:`, `failures` (counter with the window's TTL),
`checking` (sorted set of attempts in progress, scored by start time: an attempt whose process died ages
out after CHECK_EXPIRY_MS), and `lock` (with the lock's TTL).
"""

import ipaddress
import math
import secrets
from dataclasses import dataclass

from redis.asyncio import Redis

from shared.config.auth import AuthSettings

PREFIX = "yubin:auth:throttle:"
# Retry hint for an attempt refused because others are still being checked (a check is quick).
IN_PROGRESS_WAIT_MS = 1000
# No check takes this long; an attempt still listed after it belonged to a process that died.
CHECK_EXPIRY_MS = 60_000

# Lua, so that looking and counting happen in one atomic step. KEYS: (failures, checking, lock) per subject.
# ARGV: attempt id, in-progress wait ms, check expiry ms, then (max_failures, burst) per subject.
# Returns 0 (go ahead: the attempt is registered) or the milliseconds to wait.
_BEGIN = """
local subjects = #KEYS / 3
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local wait = 0
for s = 0, subjects - 1 do
  local ttl = redis.call('PTTL', KEYS[3 * s + 3])
  if ttl > wait then wait = ttl end
end
if wait > 0 then return wait end
for s = 0, subjects - 1 do
  local checking = KEYS[3 * s + 2]
  redis.call('ZREMRANGEBYSCORE', checking, '-inf', now_ms - tonumber(ARGV[3]))
  local failures = tonumber(redis.call('GET', KEYS[3 * s + 1]) or '0')
  local limit = tonumber(ARGV[4 + 2 * s]) + tonumber(ARGV[5 + 2 * s])
  if failures + redis.call('ZCARD', checking) >= limit then return tonumber(ARGV[2]) end
end
for s = 0, subjects - 1 do
  redis.call('ZADD', KEYS[3 * s + 2], now_ms, ARGV[1])
  redis.call('PEXPIRE', KEYS[3 * s + 2], ARGV[3])
end
return 0
"""

# KEYS as above. ARGV: attempt id, "failed" or "ok", window s, lock s, then (max_failures, forgive) per
# subject, forgive "1" meaning: a success clears this subject's failures.
_END = """
for s = 0, #KEYS / 3 - 1 do
  local failures, lock = KEYS[3 * s + 1], KEYS[3 * s + 3]
  redis.call('ZREM', KEYS[3 * s + 2], ARGV[1])
  if ARGV[2] == 'failed' then
    local count = redis.call('INCR', failures)
    if count == 1 then redis.call('EXPIRE', failures, ARGV[3]) end
    if count >= tonumber(ARGV[5 + 2 * s]) then
      redis.call('SET', lock, '1', 'EX', ARGV[4])
      redis.call('DEL', failures)
    end
  elseif ARGV[6 + 2 * s] == '1' then
    redis.call('DEL', failures)
  end
end
return 0
"""


@dataclass(frozen=True)
class Subject:
    name: str  # "user:bob@alpha.test", "ip:192.0.2.1"
    max_failures: int
    burst: int  # attempts in progress allowed beyond the failures left
    forgive_on_success: bool

    @property
    def keys(self) -> list[str]:
        return [f"{PREFIX}{self.name}:{part}" for part in ("failures", "checking", "lock")]


@dataclass(frozen=True)
class Attempt:
    id: str
    subjects: list[Subject]


def client_network(client_ip: str) -> str:
    """The unit an IP is throttled as: the address for IPv4, the /64 for IPv6 (one host's usual share)."""
    try:
        ip = ipaddress.ip_address(client_ip)
    except ValueError:
        return client_ip
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class Throttle:
    def __init__(self, redis: Redis, settings: AuthSettings) -> None:
        self._settings = settings
        self._begin = redis.register_script(_BEGIN)
        self._end = redis.register_script(_END)

    def attempt(self, username: str, client_ip: str | None) -> Attempt:
        subjects = [Subject(f"user:{username}", self._settings.auth_user_max_failures, 0, True)]
        if client_ip:
            ip = f"ip:{client_network(client_ip)}"
            subjects.append(
                Subject(ip, self._settings.auth_ip_max_failures, self._settings.auth_ip_burst, False)
            )
        return Attempt(secrets.token_hex(8), subjects)

    async def begin(self, attempt: Attempt) -> int | None:
        """Register the attempt. None: go ahead and check. A number: refused, retry after so many seconds."""
        limits = [n for s in attempt.subjects for n in (s.max_failures, s.burst)]
        wait_ms = await self._begin(
            keys=self._keys(attempt), args=[attempt.id, IN_PROGRESS_WAIT_MS, CHECK_EXPIRY_MS, *limits]
        )
        return None if not wait_ms else max(1, math.ceil(int(wait_ms) / 1000))

    async def end(self, attempt: Attempt, *, ok: bool) -> None:
        """Record the outcome of a begun attempt: a failure counts (and may lock), a success may forgive."""
        rules = [n for s in attempt.subjects for n in (s.max_failures, "1" if s.forgive_on_success else "0")]
        settings = self._settings
        args = [
            attempt.id,
            "ok" if ok else "failed",
            settings.auth_failure_window_s,
            settings.auth_lock_s,
            *rules,
        ]
        await self._end(keys=self._keys(attempt), args=args)

    @staticmethod
    def _keys(attempt: Attempt) -> list[str]:
        return [key for s in attempt.subjects for key in s.keys]
