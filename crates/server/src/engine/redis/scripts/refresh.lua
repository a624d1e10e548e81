-- A node's presence heartbeat for one channel: pushes back the expiry of
-- its members there, adds back any that Redis lost (restarted empty),
-- drops other nodes' expired members, and keeps the channel's state
-- alive while it has subscribers (SEQ-EPOCH-STABLE).
--
-- KEYS: 1 members, 2 expiries, 3 presence meta (as in join.lua), 4 meta
-- ARGV: 1 member TTL ms, 2 pub/sub topic, 3 node id, 4 channel state TTL
--       ms, then per member of this node: session, user, info
-- Returns the changes made (records as in join.lua).
local now = now_ms()
local ttl = tonumber(ARGV[1])
local out = prune_members(KEYS[1], KEYS[2], KEYS[3], now, ARGV[2], ARGV[3])
for i = 5, #ARGV, 3 do
  local session = ARGV[i]
  redis.call('ZADD', KEYS[2], now + ttl, session)
  if redis.call('HEXISTS', KEYS[1], session) == 0 then
    local n = redis.call('HINCRBY', KEYS[3], 'n', 1)
    local m = ns(n) .. ns(ARGV[i + 1]) .. ns(ARGV[i + 2])
    redis.call('HSET', KEYS[1], session, m)
    local v = redis.call('HINCRBY', KEYS[3], 'v', 1)
    local rec = ns('1') .. ns(v) .. ns(session) .. m
    redis.call('PUBLISH', ARGV[2], ns('p') .. ns(ARGV[3]) .. rec)
    out = out .. rec
  end
end
for i = 1, 3 do
  redis.call('PEXPIRE', KEYS[i], ttl)
end
if redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('PEXPIRE', KEYS[4], ARGV[4])
end
return out
