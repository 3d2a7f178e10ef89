-- Set each stream's projector checkpoint (delete it for a stream with no entry).
-- KEYS[1]: the lock; then checkpoint keys; ARGV: token, then an entry id or '' per checkpoint
for i = 2, #KEYS do
  if ARGV[i] ~= '' then redis.call('SET', KEYS[i], ARGV[i]) else redis.call('DEL', KEYS[i]) end
end
return 1
