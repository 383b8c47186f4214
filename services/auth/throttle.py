"""Login throttling in Redis: growing delays per (username, client network), per client network, and a
per-username cap that only slows networks the user has not logged in from.

Three counters ("subjects") may apply to a login of USER from client network NET (the IPv4 address, or
the IPv6 /64):

* `pair:NET|USER` — guesses at one user from one place. The first `auth_pair_free_failures` cost
  nothing; from then on every failure blocks the pair for a delay that doubles each time, from
  `auth_delay_base_s` up to `auth_delay_max_s`. A success from the pair clears it (a typo is forgiven).
* `ip:NET` — guesses from one place at any users (spraying); `auth_ip_free_failures` free, then the same
  growing delays. A success does not clear it: owning one account must not reset the count of guesses
  at others.
* `user:USER` — guesses at one user from everywhere (a botnet, one guess per address), counted only for
  networks that have *not* logged in as USER within `auth_known_network_s`; past
  `auth_user_free_failures` such networks are delayed, together, with the same doubling.

A network that has logged in successfully as USER within `auth_known_network_s` ("known" for USER) is
held only by its pair counter: neither a botnet's guesses (`user:`) nor a guesser behind the same NAT
(`ip:`) can keep the real user out from where they usually log in, and a guesser cannot become known
without the password. The price: a distributed attack on USER also slows USER's first login from a new
network, until the delays run out. Nothing here depends on whether USER exists; a "known" network only
comes from a right password, so the throttle's answers reveal nothing either.

While a subject blocks, a login is refused before any password is looked at, and the refusal counts as
one more failure of each subject that blocked it, so hammering through a delay only makes it longer;
a client that waits the `retry_after_s` it is told gets one check per delay. Failures are forgotten
`auth_failure_window_s` after the last delay they caused has run out.

Counting is exact under parallel logins: begin and end are atomic Lua scripts, and attempts still being
checked count as failures-to-be. While a subject's failures plus its attempts in progress reach its free
failures (or, once delays have started, while one check is already in progress), a new attempt *waits*
for one of them to end, polling every POLL_S, for at most `auth_login_wait_s`; then it is turned away
as "busy" (HTTP 503, a temporary failure), never as a failed login. So 20 parallel guesses get exactly
the free checks and 20 counted failures, and 8 parallel good logins of one user all get in. A client
network gets `auth_ip_burst` more attempts in progress, because many users behind one NAT log in at once.

Keys, under `yubin:auth:throttle:`: `<subject>:failures` (counter), `<subject>:checking` (sorted set of
attempts in progress by start time; an attempt whose process died ages out after CHECK_EXPIRY_MS),
`<subject>:block` (its TTL is the delay left), and `known:NET|USER` (TTL `auth_known_network_s`).
The network comes first in the pair and known keys: it cannot contain "|", so no username can forge them.
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
# The network of a login whose caller gave no client address.
NO_ADDRESS = "-"

# KEYS: the known key, then (failures, checking, block) per subject.
# ARGV: attempt id, outcome, check expiry ms, delay base ms, delay max ms, window ms, known ms, then
# (free failures, burst, exempt when known "1"/"0", forgiven by a success "1"/"0") per subject.
_PRELUDE = """
local known = redis.call('EXISTS', KEYS[1]) == 1
local subjects = (#KEYS - 1) / 3
local base, max_delay, window = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local function key(s, part) return KEYS[1 + 3 * s + part] end
local function arg(s, part) return ARGV[7 + 4 * s + part] end
local function applies(s) return not (known and arg(s, 3) == '1') end
local function delay(count, free)
  if count < free then return 0 end
  return math.floor(math.min(base * 2 ^ math.min(count - free, 40), max_delay))
end
-- One more failure of subject s; returns the delay it now imposes (ms, 0 while failures are free).
local function fail(s)
  local count = redis.call('INCR', key(s, 1))
  local wait = delay(count, tonumber(arg(s, 1)))
  redis.call('PEXPIRE', key(s, 1), wait + window)
  if wait > 0 then redis.call('SET', key(s, 3), '1', 'PX', wait) end
  return wait
end
"""

# Returns 0 (go ahead: the attempt is registered), -1 (too many attempts in progress: ask again soon) or
# the milliseconds to wait (refused, and counted against each subject that blocked it).
_BEGIN = (
    _PRELUDE
    + """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local blocking = {}
for s = 0, subjects - 1 do
  if applies(s) and redis.call('PTTL', key(s, 3)) > 0 then table.insert(blocking, s) end
end
if #blocking > 0 then
  local wait = 0
  for _, s in ipairs(blocking) do wait = math.max(wait, fail(s)) end
  return wait
end
for s = 0, subjects - 1 do
  if applies(s) then
    local checking = key(s, 2)
    redis.call('ZREMRANGEBYSCORE', checking, '-inf', now_ms - tonumber(ARGV[3]))
    local failures = tonumber(redis.call('GET', key(s, 1)) or '0')
    local left = math.max(tonumber(arg(s, 1)) - failures, 1)
    if redis.call('ZCARD', checking) >= left + tonumber(arg(s, 2)) then return -1 end
  end
end
for s = 0, subjects - 1 do
  if applies(s) then
    redis.call('ZADD', key(s, 2), now_ms, ARGV[1])
    redis.call('PEXPIRE', key(s, 2), ARGV[3])
  end
end
return 0
"""
)

# Outcome "failed" counts (and may block), "ok" forgives the pair and makes the network known,
# "abandoned" (the check never finished) only frees the attempt's place.
_END = (
    _PRELUDE
    + """
for s = 0, subjects - 1 do redis.call('ZREM', key(s, 2), ARGV[1]) end
if ARGV[2] == 'failed' then
  for s = 0, subjects - 1 do
    if applies(s) then fail(s) end
  end
elseif ARGV[2] == 'ok' then
  for s = 0, subjects - 1 do
    if arg(s, 4) == '1' then redis.call('DEL', key(s, 1), key(s, 3)) end
  end
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[7])
end
return 0
"""
)


@dataclass(frozen=True)
class Subject:
    name: str  # "pair:192.0.2.1|bob@alpha.test", "ip:192.0.2.1", "user:bob@alpha.test"
    free_failures: int
    burst: int  # attempts in progress allowed beyond the failures left
    exempt_when_known: bool  # not applied to a network that logged in as the user recently
    forgiven_by_success: bool

    @property
    def keys(self) -> list[str]:
        return [f"{PREFIX}{self.name}:{part}" for part in ("failures", "checking", "block")]

    @property
    def args(self) -> list[int | str]:
        flags = ("1" if self.exempt_when_known else "0", "1" if self.forgiven_by_success else "0")
        return [self.free_failures, self.burst, *flags]


@dataclass(frozen=True)
class Attempt:
    id: str
    known_key: str
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


def pair_name(username: str, client_ip: str | None) -> str:
    """The pair subject of a login (tests and admins look its counter up by this)."""
    return f"pair:{_network(client_ip)}|{username}"


def _network(client_ip: str | None) -> str:
    return client_network(client_ip).replace("|", "") if client_ip else NO_ADDRESS


class LoginsBusy(Exception):
    """Too many attempts for this username or client network were in progress for too long: try again
    later. Says nothing about the password (it was not checked)."""


class Throttle:
    def __init__(self, redis: Redis, settings: AuthSettings) -> None:
        self._settings = settings
        self._begin = redis.register_script(_BEGIN)
        self._end = redis.register_script(_END)

    def attempt(self, username: str, client_ip: str | None) -> Attempt:
        settings = self._settings
        network = _network(client_ip)
        subjects = [
            Subject(pair_name(username, client_ip), settings.auth_pair_free_failures, 0, False, True),
            Subject(f"user:{username}", settings.auth_user_free_failures, 0, True, False),
        ]
        if client_ip:
            subjects.append(
                Subject(f"ip:{network}", settings.auth_ip_free_failures, settings.auth_ip_burst, True, False)
            )
        return Attempt(secrets.token_hex(8), f"{PREFIX}known:{network}|{username}", subjects)

    async def begin(self, attempt: Attempt) -> int | None:
        """Register the attempt. None: go ahead and check. A number: refused, retry after so many seconds.

        While too many attempts are in progress, waits for one to end; raises LoginsBusy after
        `auth_login_wait_s`. One Redis round trip when nothing is in the way."""
        keys, args = self._keys(attempt), self._args(attempt, "begin")
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
        """Record the outcome of a begun attempt: a failure counts (and may start or lengthen a delay), a
        success forgives the pair and makes the network known for the user, None (the check never
        finished: Redis or the hash failed) just frees its place."""
        outcome = "abandoned" if ok is None else "ok" if ok else "failed"
        await self._end(keys=self._keys(attempt), args=self._args(attempt, outcome))

    def _args(self, attempt: Attempt, outcome: str) -> list[int | str]:
        settings = self._settings
        header: list[int | str] = [
            attempt.id,
            outcome,
            CHECK_EXPIRY_MS,
            round(settings.auth_delay_base_s * 1000),
            round(settings.auth_delay_max_s * 1000),
            settings.auth_failure_window_s * 1000,
            settings.auth_known_network_s * 1000,
        ]
        return header + [value for subject in attempt.subjects for value in subject.args]

    @staticmethod
    def _keys(attempt: Attempt) -> list[str]:
        return [attempt.known_key] + [key for s in attempt.subjects for key in s.keys]
