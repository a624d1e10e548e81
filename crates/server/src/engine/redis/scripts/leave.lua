-- Removes a presence member and streams the leave (nothing when it was
-- not a member).
--
-- KEYS: 1 members, 2 expiries, 3 presence meta (as in join.lua)
-- ARGV: 1 session id, 2 pub/sub topic, 3 node id
-- Returns the change made, if any (a record as in join.lua).
local m = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if not m then
  return ''
end
redis.call('HDEL', KEYS[1], ARGV[1])
local v = redis.call('HINCRBY', KEYS[3], 'v', 1)
local rec = ns('0') .. ns(v) .. ns(ARGV[1]) .. m
redis.call('PUBLISH', ARGV[2], ns('p') .. ns(ARGV[3]) .. rec)
return rec
