-- Members of a sorted set between two ranks, packed.
-- KEYS: the sorted set; ARGV: first rank, last rank
return pack(redis.call('ZRANGE', KEYS[1], ARGV[1], ARGV[2]))
