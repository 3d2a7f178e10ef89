-- The live state of a chunk of records, packed: per record its hash as one canonical string
-- (fields sorted bytewise, each length-prefixed), '=' .. its pointer, '=' .. its index score
-- ('' for an absent one).
-- KEYS: status key, pointer key, per record; ARGV[1]: the run index; ARGV[1 + n]: run id or ''
local out = {}
for i = 1, #KEYS, 2 do
  local flat = redis.call('HGETALL', KEYS[i])
  local fields, values = {}, {}
  for j = 1, #flat, 2 do
    fields[#fields + 1] = flat[j]
    values[flat[j]] = flat[j + 1]
  end
  table.sort(fields, lt)
  local parts = {}
  for _, f in ipairs(fields) do
    parts[#parts + 1] = #f .. ':' .. f .. #values[f] .. ':' .. values[f]
  end
  out[#out + 1] = table.concat(parts)
  local pointer = redis.call('GET', KEYS[i + 1])
  out[#out + 1] = pointer and ('=' .. pointer) or ''
  local member = ARGV[(i + 1) / 2 + 1]
  local score = member ~= '' and redis.call('ZSCORE', ARGV[1], member)
  out[#out + 1] = score and ('=' .. score) or ''
end
return pack(out)
