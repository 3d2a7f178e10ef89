-- Reset the idle time of entries this consumer still owns (never steal one back).
-- KEYS: stream; ARGV: group, consumer, entry ids...
-- Returns how many entries were refreshed
local refreshed = 0
for i = 3, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if pending[1] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    refreshed = refreshed + 1
  end
end
return refreshed
