-- One SCAN page: the next cursor and the matching keys, packed.
-- ARGV: cursor, pattern, count
local reply = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', ARGV[3])
return {reply[1], pack(reply[2])}
