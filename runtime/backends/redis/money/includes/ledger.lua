-- The ledger: stream {prefix}:ledger (field e = the entry as JSON), indexed per scope in sorted sets
-- {prefix}:li:<scope> (score = entry time; `global` indexes every entry), with spend rolled up per
-- local day in {prefix}:sd:<day> (fields <team US env US seat US workflow US model> RS <metric>).
-- xn, xc: corrections of expired charges and their (signed) sum (correct.lua).
local ROLLUP_METRICS = { 'cost', 'calls', 'input', 'cw5m', 'cw1h', 'cr', 'out', 'xn', 'xc' }

local function appendLedger(streamKey, json, at, indexKeys)
  local sid = redis.call('XADD', streamKey, '*', 'e', json)
  local m = member(sid)
  for _, k in ipairs(indexKeys) do
    redis.call('ZADD', k, at, m)
  end
  return sid
end

-- values: cost, calls, then the five token counts (and xn, xc for a correction), in ROLLUP_METRICS order.
local function rollUp(rollupKey, field, values)
  if field == '' then
    return
  end
  for i, metric in ipairs(ROLLUP_METRICS) do
    local v = values[i]
    if v and v ~= 0 then
      redis.call('HINCRBY', rollupKey, field .. '\30' .. metric, int(v))
    end
  end
end
