-- Reservations: hash {prefix}:r:<id> with amount, scopes and ids (space separated, widest first),
-- identity (JSON), requestId, kind, name, createdAt, expiresAt, status (open, settled, released,
-- expired) and, once closed, entry (the JSON of the ledger entry that closed it). Open ones are in
-- the sorted set {prefix}:rexp by expiry.

local function loadReservation(key)
  local r = hash(key)
  if r == nil then
    return nil
  end
  local st = r.status
  if st ~= 'open' and st ~= 'settled' and st ~= 'released' and st ~= 'expired' then
    corrupt(key .. ' status = ' .. tostring(st))
  end
  if st == 'open' then
    r.amount = micros(r.amount, key .. ' amount')
    r.createdAt = micros(r.createdAt, key .. ' createdAt')
  end
  return r
end

-- Marks a reservation closed with the entry that closed it and lets it expire after a while.
local function tombstone(key, rexpKey, id, status, entryJson)
  redis.call('HSET', key, 'status', status, 'entry', entryJson)
  redis.call('PEXPIRE', key, TOMBSTONE_MS)
  redis.call('ZREM', rexpKey, id)
end

-- Closes up to `limit` reservations past their expiry, each CHARGED its reserved amount (the call's
-- worst case: its outcome is unknown, and a call the provider billed must never cost 0) and
-- recorded as an `expired` ledger entry with that cost, rolled up as spend like any other.
-- Reconciliation corrects the difference per request id. A settle that comes later finds it closed.
-- The keys of an expired reservation's budgets and ledger indexes come from the reservation itself,
-- not KEYS: they cannot be known before the script runs. They share the prefix's hash tag, so they
-- live in the same cluster slot as every key passed in.
local function expireDue(rexpKey, streamKey, limit)
  local due = redis.call('ZRANGEBYSCORE', rexpKey, '-inf', CTX.now, 'LIMIT', 0, limit)
  for _, id in ipairs(due) do
    local key = CTX.prefix .. ':r:' .. id
    local r = loadReservation(key)
    if r == nil or r.status ~= 'open' then
      redis.call('ZREM', rexpKey, id)
    else
      local budgets = {}
      for _, bid in ipairs(split(r.ids)) do
        local b = loadBudget(CTX.prefix .. ':b:' .. bid)
        if b then
          table.insert(budgets, b)
        end
      end
      local indexKeys = {}
      for _, scope in ipairs(split(r.scopes)) do
        table.insert(indexKeys, CTX.prefix .. ':li:' .. scope)
      end
      for _, b in ipairs(budgets) do
        charge(b, r.amount, r.amount)
      end
      -- Its rate limits (includes/rate.lua): charged what was reserved, the concurrent slot freed.
      if r.rates then
        closeRates(r.rates, function(unit, amount)
          return unit == 'concurrent' and 0 or amount
        end)
      end
      local kind = r.kind ~= '' and r.kind or 'model'
      local name = r.name or ''
      local json = '{"id":' .. cjson.encode('led_' .. string.gsub(id, '^res_', '') .. 'x')
        .. ',"at":' .. int(CTX.now)
        .. ',"requestId":' .. cjson.encode(r.requestId ~= '' and r.requestId or id)
        .. ',"identity":' .. r.identity
        .. ',"kind":' .. cjson.encode(kind)
        .. ',"name":' .. cjson.encode(name)
        .. ((r.provider or '') ~= '' and (',"provider":' .. cjson.encode(r.provider)) or '')
        .. ',"tokens":{"input":0,"cacheWrite5m":0,"cacheWrite1h":0,"cacheRead":0,"output":0}'
        .. ',"reserved":' .. int(r.amount) .. ',"cost":' .. int(r.amount) .. ',"overrun":0,"outcome":"expired"'
        .. ',"code":"reservation_expired","latencyMs":' .. int(CTX.now - r.createdAt)
        .. ',"reservationId":' .. cjson.encode(id) .. '}'
      appendLedger(streamKey, json, CTX.now, indexKeys)
      local who = cjson.decode(r.identity)
      local model = kind == 'model' and name or ('tool:' .. name)
      local prov = kind == 'model' and ((r.provider or '') ~= '' and r.provider or 'anthropic') or '(tool)'
      local field = table.concat({ who.team, who.env, who.seat, who.workflow or '(none)', model, prov }, '\31')
      rollUp(CTX.prefix .. ':sd:' .. CTX.day.key, field, { r.amount, 1, 0, 0, 0, 0, 0 })
      tombstone(key, rexpKey, id, 'expired', json)
    end
  end
  return #due
end
