-- Count each group's live consumers: members whose announcement has not expired yet, in the
-- engine's time (the time their announcements were scored in).
-- KEYS: the groups' sets of live consumers
-- Returns one count per key, in order
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local counts = {}
for i, key in ipairs(KEYS) do
  counts[i] = redis.call('ZCOUNT', key, '(' .. string.format('%d', ms), '+inf')
end
return counts
