-- Prelude: refuse unless the rebuild still holds the projector lock, atomically with the
-- writes that follow. KEYS[1]: the lock; ARGV[1]: the rebuild's token
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('LOCKLOST the projector lock is no longer held by this rebuild')
end
