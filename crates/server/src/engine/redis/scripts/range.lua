-- The stored messages of one epoch numbered from..to (the hub fills a
-- hole in the pub/sub stream with them); none when the epoch changed.
--
-- KEYS: 1 meta, 2 history
-- ARGV: 1 epoch, 2 from seq, 3 to seq
-- Returns the entries (5 fields each).
if redis.call('HGET', KEYS[1], 'e') ~= ARGV[1] then
  return ''
end
local out = ''
for _, e in ipairs(redis.call('XRANGE', KEYS[2], ARGV[2] .. '-0', ARGV[3] .. '-0')) do
  out = out .. entry(e)
end
return out
