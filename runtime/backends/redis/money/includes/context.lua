-- Shared by every script: the caller's clock and calendar windows (computed in Node, which knows
-- the time zone), and the key prefix for keys derived from stored data.
-- ARGV[1] now (ms), ARGV[2..4] day window key/start/resetsAt, ARGV[5..7] the month's, ARGV[8] prefix.
local CTX = {
  now = tonumber(ARGV[1]),
  day = { key = ARGV[2], start = tonumber(ARGV[3]), resets = tonumber(ARGV[4]) },
  month = { key = ARGV[5], start = tonumber(ARGV[6]), resets = tonumber(ARGV[7]) },
  prefix = ARGV[8],
}
-- Script arguments start after the shared ones.
local ARG0 = 8
-- Closed reservations are remembered this long so a repeated settle or release is a no-op.
local TOMBSTONE_MS = 7 * 24 * 3600000

-- Integers as exact decimal strings (tostring would print 1e+15).
local function int(n)
  return string.format('%d', n)
end

-- Anything stored that cannot be what we wrote stops the script before it writes: fail closed.
local function corrupt(msg)
  error({ err = 'CHOKEPOINT_CORRUPT ' .. msg })
end

local function micros(v, what)
  if type(v) ~= 'string' or not string.match(v, '^%d+$') or #v > 16 then
    corrupt(what .. ' = ' .. tostring(v))
  end
  return tonumber(v)
end

-- HGETALL as a table; nil when the key does not exist.
local function hash(key)
  local raw = redis.call('HGETALL', key)
  if #raw == 0 then
    return nil
  end
  local h = {}
  for i = 1, #raw, 2 do
    h[raw[i]] = raw[i + 1]
  end
  return h
end

-- Stream ids as fixed-width index members, so equal scores sort by insertion.
local function member(streamId)
  local ms, seq = string.match(streamId, '^(%d+)-(%d+)$')
  return string.format('%013d-%010d', tonumber(ms), tonumber(seq))
end

local function split(s)
  local out = {}
  for part in string.gmatch(s or '', '%S+') do
    table.insert(out, part)
  end
  return out
end
