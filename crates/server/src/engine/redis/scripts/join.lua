-- Adds a presence member (PRESENCE-JOIN-LEAVE) with an expiry that its
-- node refreshes (refresh.lua), and streams the join to every node.
--
-- KEYS: 1 members (hash: session -> record n, user, info; n is the join
--       order), 2 expiries (zset: session -> expires at, ms),
--       3 presence meta (hash: n join counter, v membership version)
-- ARGV: 1 session id, 2 user, 3 info, 4 member TTL ms, 5 pub/sub topic,
--       6 node id
-- Returns the changes made (expired members' leaves, the join): records
-- of joined flag, version, session, n, user, info.
local now = now_ms()
local ttl = tonumber(ARGV[4])
local out = prune_members(KEYS[1], KEYS[2], KEYS[3], now, ARGV[5], ARGV[6])
redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  local n = redis.call('HINCRBY', KEYS[3], 'n', 1)
  local m = ns(n) .. ns(ARGV[2]) .. ns(ARGV[3])
  redis.call('HSET', KEYS[1], ARGV[1], m)
  local v = redis.call('HINCRBY', KEYS[3], 'v', 1)
  local rec = ns('1') .. ns(v) .. ns(ARGV[1]) .. m
  redis.call('PUBLISH', ARGV[5], ns('p') .. ns(ARGV[6]) .. rec)
  out = out .. rec
end
for i = 1, 3 do
  redis.call('PEXPIRE', KEYS[i], ttl)
end
return out
