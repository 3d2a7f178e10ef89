-- Announce a live consumer: score it in its group's set by when the announcement expires, in
-- the engine's time (so the hosts' clocks do not matter); drop expired members; let the set
-- itself expire with its last announcement, so a group nobody runs leaves nothing behind.
-- KEYS: the group's set of live consumers; ARGV: consumer, time to live in ms
-- Returns the number of consumers the set holds now
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', ms))
redis.call('ZADD', KEYS[1], string.format('%d', ms + tonumber(ARGV[2])), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
return redis.call('ZCARD', KEYS[1])
