"""Keeping the queue streams short: an entry is deleted once every consumer group is done with it.

Redis keeps an acknowledged stream entry until someone deletes it, so a queue stream that is only ever
acknowledged grows by every message forever (and a consumer group created anew at `0` would replay the
whole history). Two scripts keep it to the work not yet done:

- `ACK` (the bus's acknowledgement, staged in the handler's own MULTI where it has one): XACK, forget the
  entry's recorded failure, and XDEL the entry unless another consumer group on the stream has not read
  it yet or still has it pending. Redis 7.0 has no XACKDEL (8.2), hence the script. So in steady state
  XLEN of a queue stream is its backlog.
- `TRIM` (run by every consumer now and then): XTRIM MINID up to the oldest entry some group still needs
  (its oldest pending entry, or the first it has not read). It sweeps what `ACK` left: history written
  before this existed, entries acknowledged some other way. It also forgets consumers that have been gone
  for a day and hold nothing (every restart of a service joins the group under a new name).

A stream with no consumer group is never trimmed: nobody has read anything yet.
"""

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

FAILURES_KEY = "yubin:bus:failures:{}"
"""Hash per stream: entry id → the last error a handler raised on it (for the dead-letter reason)."""

CONSUMER_GONE_MS = 24 * 3600 * 1000

# Stream ids compare as (milliseconds, sequence); both fit a Lua number (a double) exactly.
_ID_FUNCTIONS = """
local function parse_id(id)
  local dash = string.find(id, '-', 1, true)
  return tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))
end
local function id_less(a, b)
  local ams, aseq = parse_id(a)
  local bms, bseq = parse_id(b)
  return ams < bms or (ams == bms and aseq < bseq)
end
local function field(flat, name)
  for i = 1, #flat, 2 do
    if flat[i] == name then return flat[i + 1] end
  end
end
"""

# KEYS[1] the stream, KEYS[2] its failures hash; ARGV[1] our group, ARGV[2] the entry id.
ACK = (
    _ID_FUNCTIONS
    + """
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[2])
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local name = field(group, 'name')
  if name ~= ARGV[1] then
    if id_less(field(group, 'last-delivered-id'), ARGV[2]) then return acked end
    if #redis.call('XPENDING', KEYS[1], name, ARGV[2], ARGV[2], 1) > 0 then return acked end
  end
end
redis.call('XDEL', KEYS[1], ARGV[2])
return acked
"""
)

# KEYS[1] the stream; ARGV[1] how long a consumer with nothing pending must have been idle to be forgotten.
# Returns how many entries were trimmed.
TRIM = (
    _ID_FUNCTIONS
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups == 0 then return 0 end
local keep_from = nil
for _, group in ipairs(groups) do
  local name = field(group, 'name')
  local needed
  local summary = redis.call('XPENDING', KEYS[1], name)
  if summary[1] > 0 then
    needed = summary[2]
  else
    local ms, seq = parse_id(field(group, 'last-delivered-id'))
    needed = ms .. '-' .. (seq + 1)
  end
  if keep_from == nil or id_less(needed, keep_from) then keep_from = needed end
  for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], name)) do
    if field(consumer, 'pending') == 0 and field(consumer, 'idle') > tonumber(ARGV[1]) then
      redis.call('XGROUP', 'DELCONSUMER', KEYS[1], name, field(consumer, 'name'))
    end
  end
end
return redis.call('XTRIM', KEYS[1], 'MINID', keep_from)
"""
)


def stage_ack_and_delete(pipe: Pipeline, stream: str, group: str, entry_id: str) -> None:
    # Plain EVAL: redis-py's Script wrapper is a coroutine on asyncio clients and cannot be staged.
    pipe.eval(ACK, 2, stream, FAILURES_KEY.format(stream), group, entry_id)


async def ack_and_delete(redis: Redis, stream: str, group: str, entry_id: str) -> int:
    return int(await redis.eval(ACK, 2, stream, FAILURES_KEY.format(stream), group, entry_id))


async def trim(redis: Redis, stream: str, consumer_gone_ms: int = CONSUMER_GONE_MS) -> int:
    """Delete the entries every group is done with; returns how many."""
    return int(await redis.eval(TRIM, 1, stream, consumer_gone_ms))
