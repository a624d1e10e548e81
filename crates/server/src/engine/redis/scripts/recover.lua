-- The channel's position and, for a resume in its epoch, the history
-- after the resume position, read in one atomic step with respect to
-- numbering (RESUME-ALL-OR-NOTHING). A channel without state gets one
-- (epoch, seq 0), so that the position a subscriber is acked with stays
-- the channel's position until a message is numbered (SEQ-EPOCH-STABLE).
--
-- KEYS: 1 meta, 2 history
-- ARGV: 1 epoch for a channel without state, 2 channel state TTL ms,
--       3 resume epoch ('' when no resume or nothing to read),
--       4 resume seq
-- Returns the record: epoch, seq, now (ms), then the entries after the
-- resume seq (5 fields each) when the resume epoch is the current one.
local now = now_ms()
local epoch = redis.call('HGET', KEYS[1], 'e')
local seq = 0
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'e', epoch, 's', '0')
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('DEL', KEYS[2])
else
  -- Read only: each node's position check runs this once a second per
  -- channel; the members' heartbeat keeps a subscribed channel's state.
  seq = tonumber(redis.call('HGET', KEYS[1], 's') or '0')
end
local out = ns(epoch) .. ns(seq) .. ns(now)
local from = tonumber(ARGV[4])
if ARGV[3] == epoch and from < seq then
  for _, e in ipairs(redis.call('XRANGE', KEYS[2], string.format('%d', from + 1) .. '-0',
      string.format('%d', seq) .. '-0')) do
    out = out .. entry(e)
  end
end
return out
