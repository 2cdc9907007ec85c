-- The audit log: stream {prefix}:audit (field e = JSON), indexed in sorted sets {prefix}:ai (all) and
-- {prefix}:ai:<target>, score = time.
local function appendAudit(streamKey, allKey, targetKey, json, at)
  local m = member(redis.call('XADD', streamKey, '*', 'e', json))
  redis.call('ZADD', allKey, at, m)
  redis.call('ZADD', targetKey, at, m)
end

-- An audit entry's JSON from its head (the entry without before/after) and the two JSON values.
local function auditJson(head, before, after)
  return string.sub(head, 1, -2) .. ',"before":' .. before .. ',"after":' .. after .. '}'
end
