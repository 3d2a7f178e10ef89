-- Append one event, idempotently: record the entry under the idempotency key and in the
-- correlation index in the same atomic step as the XADD, so a retried command yields one entry.
-- KEYS: stream, idempotency key ('' for none), correlation list
-- ARGV: the event's JSON, the idempotency key's TTL in seconds
-- Returns {entry id, 1 when the key had been seen (nothing appended) else 0}
local existing = false
if KEYS[2] ~= '' then
  existing = redis.call('GET', KEYS[2])
  if existing then return {existing, 1} end
end
local id = redis.call('XADD', KEYS[1], '*', 'event', ARGV[1])
if KEYS[2] ~= '' then redis.call('SET', KEYS[2], id, 'EX', ARGV[2]) end
redis.call('RPUSH', KEYS[3], KEYS[1] .. ' ' .. id)
return {id, 0}
