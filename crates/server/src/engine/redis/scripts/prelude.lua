-- Shared by every script of the Redis engine (prepended to each one; see
-- scripts.rs). Records are runs of `<len>:<bytes>` fields (wire.rs).

-- One field. Numbers are written with %d: Lua's tostring would print
-- large integers (seq up to 2^53-1) in exponent form.
local function ns(v)
  if type(v) == 'number' then
    v = string.format('%d', v)
  end
  return #v .. ':' .. v
end

-- Milliseconds since the Unix epoch by the Redis clock, so that every
-- node numbers with one clock (MSG-TS) and expiries agree.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The fields of a history entry, as written by publish.lua: seq (from
-- the entry id `<seq>-0`), id, ts, publisher, payload.
local function entry(e)
  local f = e[2]
  return ns(string.match(e[1], '^(%d+)')) .. ns(f[2]) .. ns(f[4]) .. ns(f[6]) .. ns(f[8])
end

-- Drops presence members whose expiry passed (their node stopped
-- refreshing them): each leave bumps the membership version and is
-- streamed to every node. KEYS layout of the presence scripts: members,
-- expiries, presence meta. Returns the leave records.
local function prune_members(members, expiries, pmeta, now, topic, node)
  local out = ''
  local gone = redis.call('ZRANGEBYSCORE', expiries, '-inf', now, 'LIMIT', 0, 256)
  for _, session in ipairs(gone) do
    local m = redis.call('HGET', members, session)
    redis.call('ZREM', expiries, session)
    if m then
      redis.call('HDEL', members, session)
      local v = redis.call('HINCRBY', pmeta, 'v', 1)
      local rec = ns('0') .. ns(v) .. ns(session) .. m
      redis.call('PUBLISH', topic, ns('p') .. ns(node) .. rec)
      out = out .. rec
    end
  end
  return out
end
