-- One page of a stream, packed: entry id, then its event field ('' when absent), per entry.
-- KEYS: the stream; ARGV: first id (inclusive, or '(' id), count, the event field's name
local rows = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])
local items = {}
for _, row in ipairs(rows) do
  local payload = ''
  for i = 1, #row[2], 2 do
    if row[2][i] == ARGV[3] then payload = row[2][i + 1] end
  end
  items[#items + 1] = row[1]
  items[#items + 1] = payload
end
return pack(items)
