"""Login throttling in Redis, per username and per client IP.

Each subject (a username, a client IP) has failures, counted within `auth_failure_window_s`; at its
limit the subject is locked for `auth_lock_s`. While locked, logins are refused before any password is
looked at, so guessing learns nothing, not even whether the right password was among the guesses.

Attempts still being checked count too, but they never lock anyone out: while a subject's failures plus
its attempts in progress reach its limit, a new attempt *waits* (polling every POLL_S) until one of them
ends, for at most `auth_login_wait_s`; only then is it turned away, as "busy" (HTTP 503, a temporary
failure for the client), never as "too many failed logins". So a burst of parallel guesses cannot slip
past the limit while the slow hashes are computed (for usernames the bound is exact: never more checks
than failures left), and 8 parallel good logins of one user all succeed: the ones over the limit wait a
hash or two, and the first success clears the username's failures. A client IP gets `auth_ip_burst`
more attempts in progress, because many users behind one NAT (or a benchmark on 127.0.0.1) do log in at
once; a burst of guesses from one IP overshoots its failure limit by at most that many.

Usernames are counted whether or not such a user exists: an unknown name locks exactly like a real one,
so the lock reveals nothing. A success clears the username's failures but not the IP's: an attacker
owning one account cannot reset the IP's count between guesses at others.

Keys, under `yubin:auth:throttle:<user:NAME | ip:ADDRESS>:`, `failures` (counter with the window's TTL),
`checking` (sorted set of attempts in progress, scored by start time: an attempt whose process died ages
out after CHECK_EXPIRY_MS), and `lock` (with the lock's TTL).
"""

import asyncio
import ipaddress
import math
import secrets
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from shared.config.auth import AuthSettings

PREFIX = "yubin:auth:throttle:"
# How often a waiting attempt asks again whether it may go ahead (a check takes a few tens of ms).
POLL_S = 0.025
# No check takes this long; an attempt still listed after it belonged to a process that died.
CHECK_EXPIRY_MS = 60_000

# Lua, so that looking and counting happen in one atomic step. KEYS: (failures, checking, lock) per subject.
# ARGV: attempt id, check expiry ms, then (max_failures, burst) per subject.
# Returns 0 (go ahead: the attempt is registered), -1 (too many attempts in progress: ask again soon) or
# the milliseconds a lock has left.
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
  redis.call('ZREMRANGEBYSCORE', checking, '-inf', now_ms - tonumber(ARGV[2]))
  local failures = tonumber(redis.call('GET', KEYS[3 * s + 1]) or '0')
  local limit = tonumber(ARGV[3 + 2 * s]) + tonumber(ARGV[4 + 2 * s])
  if failures + redis.call('ZCARD', checking) >= limit then return -1 end
end
for s = 0, subjects - 1 do
  redis.call('ZADD', KEYS[3 * s + 2], now_ms, ARGV[1])
  redis.call('PEXPIRE', KEYS[3 * s + 2], ARGV[2])
end
return 0
"""

# KEYS as above. ARGV: attempt id, "failed", "ok" or "abandoned" (no outcome: just no longer in
# progress), window s, lock s, then (max_failures, forgive) per
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
  elseif ARGV[2] == 'ok' and ARGV[6 + 2 * s] == '1' then
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


class LoginsBusy(Exception):
    """Too many attempts for this username or client IP were in progress for too long: try again later.
    Says nothing about the password (it was not checked)."""


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
        """Register the attempt. None: go ahead and check. A number: locked, retry after so many seconds.

        While too many attempts are in progress, waits for one to end; raises LoginsBusy after
        `auth_login_wait_s`. One Redis round trip when nothing is in the way."""
        limits = [n for s in attempt.subjects for n in (s.max_failures, s.burst)]
        keys, args = self._keys(attempt), [attempt.id, CHECK_EXPIRY_MS, *limits]
        deadline = time.monotonic() + self._settings.auth_login_wait_s
        while True:
            answer = int(await self._begin(keys=keys, args=args))
            if answer == 0:
                return None
            if answer > 0:
                return max(1, math.ceil(answer / 1000))
            if time.monotonic() >= deadline:
                raise LoginsBusy
            await asyncio.sleep(POLL_S)

    async def end(self, attempt: Attempt, *, ok: bool | None) -> None:
        """Record the outcome of a begun attempt: a failure counts (and may lock), a success may forgive,
        None (the check never finished: Redis or the hash failed) just frees its place."""
        rules = [n for s in attempt.subjects for n in (s.max_failures, "1" if s.forgive_on_success else "0")]
        settings = self._settings
        args = [
            attempt.id,
            "abandoned" if ok is None else "ok" if ok else "failed",
            settings.auth_failure_window_s,
            settings.auth_lock_s,
            *rules,
        ]
        await self._end(keys=self._keys(attempt), args=args)

    @staticmethod
    def _keys(attempt: Attempt) -> list[str]:
        return [key for s in attempt.subjects for key in s.keys]
