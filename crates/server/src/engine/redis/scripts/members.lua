-- A channel's presence members with the membership version
-- (PRESENCE-QUERY, PRESENCE-CONSISTENT), after dropping expired ones.
--
-- KEYS: 1 members, 2 expiries, 3 presence meta (as in join.lua)
-- ARGV: 1 pub/sub topic, 2 node id
-- Returns: the changes made (one field holding records as in join.lua),
-- the version, then per member: session, n, user, info.
local now = now_ms()
local changes = prune_members(KEYS[1], KEYS[2], KEYS[3], now, ARGV[1], ARGV[2])
local v = tonumber(redis.call('HGET', KEYS[3], 'v') or '0')
local out = ns(changes) .. ns(v)
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  out = out .. ns(all[i]) .. all[i + 1]
end
return out
