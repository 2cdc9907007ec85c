/**
 * A list page position: the last run returned, newest started first and ties by id descending.
 * Opaque to callers (base64url of `[startedAt, id]`), so a store may change what it holds.
 */
export interface ListCursor {
  startedAt: number;
  id: string;
}

export function encodeCursor(c: ListCursor): string {
  return encodePosition(c.startedAt, c.id);
}

export function decodeCursor(s: string): ListCursor {
  const { at, id } = decodePosition(s, 'run');
  return { startedAt: at, id };
}

/** A page position of any newest-first list (runs, approval items): a time and an id, opaque. */
export function encodePosition(at: number, id: string): string {
  return Buffer.from(JSON.stringify([at, id])).toString('base64url');
}

/** The position a cursor holds; a cursor that does not decode is an error naming the list. */
export function decodePosition(s: string, what: string): { at: number; id: string } {
  try {
    const [at, id] = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as unknown[];
    if (typeof at === 'number' && Number.isFinite(at) && typeof id === 'string') return { at, id };
  } catch {}
  throw new Error(`invalid ${what} list cursor: ${JSON.stringify(s)}`);
}

/**
 * Redis: the next page of a zset scored by time, newest first, after a cursor.
 * KEYS: the zset. ARGV: cursor score ('' for the first page), cursor id, count.
 * Returns [id, score, id, score, ...]. The cursor's member may have left the zset since the last
 * page (a run changed state, an item was decided): then its place is found by counting the
 * members that sort before it (ids compared bytewise, as Redis orders equal scores; Lua's own
 * `<` follows the server's locale).
 */
export const ZSET_PAGE_LUA = `
local function after(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a > #b
end
local count = tonumber(ARGV[3])
local start = 0
if ARGV[1] ~= '' then
  local score = tonumber(ARGV[1])
  local at = redis.call('ZSCORE', KEYS[1], ARGV[2])
  if at and tonumber(at) == score then
    start = redis.call('ZREVRANK', KEYS[1], ARGV[2]) + 1
  else
    start = redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[1], '+inf')
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[1])) do
      if after(id, ARGV[2]) then start = start + 1 end
    end
  end
end
return redis.call('ZREVRANGE', KEYS[1], start, start + count - 1, 'WITHSCORES')`;
