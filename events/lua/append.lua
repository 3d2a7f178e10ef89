-- Append one event, idempotently: record the entry under the idempotency key and in the
-- correlation index in the same atomic step as the XADD, so a retried command yields one entry.
-- The key's record is `<entry id>` or `<entry id> <fingerprint of the request>`; a repeat with a
-- different fingerprint is refused (compared only when both sides have one). The event id is
-- recorded too, forever: an event whose id the log already holds is refused (after the key's
-- check, so a retry that resends the same event under its key still gets its first entry).
-- KEYS: stream, idempotency key ('' for none), correlation list, event id hash
-- ARGV: the event's JSON, the idempotency key's TTL in seconds, the fingerprint ('' for none),
-- the event id
-- Returns {entry id, 0} appended; {first entry id, 1} key seen with this request; {first entry
-- id, 2} key seen with a different request; {`stream entry id` holding the event id, 3} event
-- id seen (nothing appended unless 0)
if KEYS[2] ~= '' then
  local recorded = redis.call('GET', KEYS[2])
  if recorded then
    local space = string.find(recorded, ' ', 1, true)
    if not space then return {recorded, 1} end
    local first = string.sub(recorded, 1, space - 1)
    if ARGV[3] ~= '' and string.sub(recorded, space + 1) ~= ARGV[3] then return {first, 2} end
    return {first, 1}
  end
end
local holder = redis.call('HGET', KEYS[4], ARGV[4])
if holder then return {holder, 3} end
local id = redis.call('XADD', KEYS[1], '*', 'event', ARGV[1])
if KEYS[2] ~= '' then
  local record = id
  if ARGV[3] ~= '' then record = id .. ' ' .. ARGV[3] end
  redis.call('SET', KEYS[2], record, 'EX', ARGV[2])
end
redis.call('HSET', KEYS[4], ARGV[4], KEYS[1] .. ' ' .. id)
redis.call('RPUSH', KEYS[3], KEYS[1] .. ' ' .. id)
return {id, 0}
