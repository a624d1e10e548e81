-- Numbers, stores and streams one publish, or recognises a duplicate
-- (engine/mod.rs guarantees; SEQ-GAPFREE, SEQ-EPOCH-STABLE,
-- DEDUP-ACK-ORIGINAL). One atomic step: nothing is numbered twice, and a
-- number is consumed only when the message is stored.
--
-- KEYS: 1 meta (hash: e epoch, s seq), 2 history (stream, entry id
--       `<seq>-0`, fields i t p d), 3 dedupe (hash: key -> "epoch seq"),
--       4 dedupe times (zset: key -> numbered at, ms)
-- ARGV: 1 epoch for a channel without state, 2 history size,
--       3 history TTL ms, 4 dedupe window ms, 5 dedupe maximum (0: none),
--       6 dedupe key, 7 publish id, 8 publisher, 9 payload, 10 pub/sub
--       topic, 11 node id, 12 largest seq, 13 channel state TTL ms
-- Returns the record: epoch, seq, duplicate flag, ts.
local now = now_ms()
local window = tonumber(ARGV[4])

-- DEDUP-WINDOW: forget keys older than the window (a bounded batch per
-- call; the rest goes with later publishes or the keys' expiry).
local old = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now - window, 'LIMIT', 0, 128)
if #old > 0 then
  redis.call('HDEL', KEYS[3], unpack(old))
  redis.call('ZREM', KEYS[4], unpack(old))
end
local seen = redis.call('HGET', KEYS[3], ARGV[6])
if seen then
  local e, s = string.match(seen, '^(%S+) (%d+)$')
  return ns(e) .. ns(s) .. ns('1') .. ns(0)
end

local epoch = redis.call('HGET', KEYS[1], 'e')
local seq = tonumber(redis.call('HGET', KEYS[1], 's') or '0')
if (not epoch) or seq >= tonumber(ARGV[12]) then
  -- SEQ-EPOCH-STABLE: the channel's state was lost (or its numbers ran
  -- out, SEQ-JS-SAFE): a new epoch, and no history of an older one.
  epoch = ARGV[1]
  seq = 0
  redis.call('DEL', KEYS[2])
end
seq = seq + 1
redis.call('HSET', KEYS[1], 'e', epoch, 's', string.format('%d', seq))
redis.call('PEXPIRE', KEYS[1], ARGV[13])

local size = tonumber(ARGV[2])
if size > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', size, string.format('%d', seq) .. '-0',
    'i', ARGV[7], 't', string.format('%d', now), 'p', ARGV[8], 'd', ARGV[9])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
else
  redis.call('DEL', KEYS[2])
end

redis.call('HSET', KEYS[3], ARGV[6], epoch .. ' ' .. string.format('%d', seq))
redis.call('ZADD', KEYS[4], now, ARGV[6])
local max = tonumber(ARGV[5])
if max > 0 then
  -- The dedupe record's bound: the oldest keys go first.
  local over = redis.call('ZCARD', KEYS[4]) - max
  if over > 0 then
    local drop = redis.call('ZRANGE', KEYS[4], 0, over - 1)
    redis.call('HDEL', KEYS[3], unpack(drop))
    redis.call('ZREMRANGEBYRANK', KEYS[4], 0, over - 1)
  end
end
redis.call('PEXPIRE', KEYS[3], window)
redis.call('PEXPIRE', KEYS[4], window)

redis.call('PUBLISH', ARGV[10], ns('m') .. ns(ARGV[11]) .. ns(epoch) .. ns(seq) .. ns(ARGV[7])
  .. ns(now) .. ns(ARGV[8]) .. ns(ARGV[9]))
return ns(epoch) .. ns(seq) .. ns('0') .. ns(now)
