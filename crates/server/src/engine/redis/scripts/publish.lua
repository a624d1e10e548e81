-- Numbers, stores and streams one publish, or recognises a duplicate
-- (engine/mod.rs guarantees; SEQ-GAPFREE, SEQ-EPOCH-STABLE,
-- DEDUP-ACK-ORIGINAL). One atomic step: nothing is numbered twice, and a
-- number is consumed only when the message is stored.
--
-- KEYS: 1 meta (hash: e epoch, s seq), 2 history (stream, entry id
--       `<seq>-0`, fields i t p d), 3 dedupe (hash: key -> "epoch seq
--       numbered-at-ms"; field '#' counts insertions), 4 dedupe order
--       (zset: key -> insertion number, oldest first)
-- ARGV: 1 epoch for a channel without state, 2 history size,
--       3 history TTL ms, 4 dedupe window ms, 5 dedupe maximum (0: none),
--       6 dedupe key, 7 publish id, 8 publisher, 9 payload, 10 pub/sub
--       topic, 11 node id, 12 largest seq, 13 channel state TTL ms
-- Returns the record: epoch, seq, duplicate flag, ts, dedupe keys
-- forgotten early because of the maximum.
local now = now_ms()
local window = tonumber(ARGV[4])

-- DEDUP-WINDOW: forget keys older than the window, oldest first (a
-- bounded batch per call; the rest goes with later publishes or the keys'
-- expiry).
local cutoff = now - window
local expired = {}
for _, k in ipairs(redis.call('ZRANGE', KEYS[4], 0, 127)) do
  local rec = redis.call('HGET', KEYS[3], k)
  if rec and tonumber(string.match(rec, ' (%d+)$')) > cutoff then
    break
  end
  expired[#expired + 1] = k
end
if #expired > 0 then
  redis.call('HDEL', KEYS[3], unpack(expired))
  redis.call('ZREM', KEYS[4], unpack(expired))
end
local seen = redis.call('HGET', KEYS[3], ARGV[6])
if seen then
  local e, s = string.match(seen, '^(%S+) (%d+) ')
  return ns(e) .. ns(s) .. ns('1') .. ns(0) .. ns(0)
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

redis.call('HSET', KEYS[3], ARGV[6],
  epoch .. ' ' .. string.format('%d', seq) .. ' ' .. string.format('%d', now))
redis.call('ZADD', KEYS[4], redis.call('HINCRBY', KEYS[3], '#', 1), ARGV[6])
local evicted = 0
local max = tonumber(ARGV[5])
if max > 0 then
  -- DEDUP-MAX: beyond the maximum the oldest keys go first, so the last
  -- `max` publishes are always remembered.
  local over = redis.call('ZCARD', KEYS[4]) - max
  if over > 0 then
    local drop = redis.call('ZRANGE', KEYS[4], 0, over - 1)
    for i = 1, #drop, 1000 do
      redis.call('HDEL', KEYS[3], unpack(drop, i, math.min(i + 999, #drop)))
    end
    redis.call('ZREMRANGEBYRANK', KEYS[4], 0, over - 1)
    evicted = over
  end
end
redis.call('PEXPIRE', KEYS[3], window)
redis.call('PEXPIRE', KEYS[4], window)

redis.call('PUBLISH', ARGV[10], ns('m') .. ns(ARGV[11]) .. ns(epoch) .. ns(seq) .. ns(ARGV[7])
  .. ns(now) .. ns(ARGV[8]) .. ns(ARGV[9]))
return ns(epoch) .. ns(seq) .. ns('0') .. ns(now) .. ns(evicted)
