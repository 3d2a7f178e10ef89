-- Claim entries idle past the visibility timeout, with how often each was delivered.
-- KEYS: stream; ARGV: group, consumer, min idle ms, count
-- Returns {{entry id, fields, deliveries}, ...} (entries deleted while pending are left out)
local claimed = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], '0-0', 'COUNT', ARGV[4])
local out = {}
for _, entry in ipairs(claimed[2]) do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], entry[1], entry[1], 1)
  if entry[2] and pending[1] then table.insert(out, {entry[1], entry[2], pending[1][4]}) end
end
return out
