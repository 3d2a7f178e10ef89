-- Replace hashes whole, set pointers and index scores for a chunk, in one atomic step.
-- KEYS[1]: the lock; ARGV: token, run index, JSON {h: [[key, [f, v, ...]]], s: [[key, v]],
-- z: [score, member, ...]}
local doc = cjson.decode(ARGV[3])
for _, h in ipairs(doc.h) do
  redis.call('DEL', h[1])
  redis.call('HSET', h[1], unpack(h[2]))
end
for _, s in ipairs(doc.s) do redis.call('SET', s[1], s[2]) end
if #doc.z > 0 then redis.call('ZADD', ARGV[2], unpack(doc.z)) end
return 1
