-- Delete keys and remove run index members, in one atomic step.
-- KEYS[1]: the lock; ARGV: token, run index, JSON {k: [key, ...], m: [member, ...]}
local doc = cjson.decode(ARGV[3])
if #doc.k > 0 then redis.call('DEL', unpack(doc.k)) end
if #doc.m > 0 then redis.call('ZREM', ARGV[2], unpack(doc.m)) end
return 1
