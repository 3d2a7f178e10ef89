-- Apply one event's fact (if it wins its slot), re-derive the record, advance the checkpoint.
-- Refuses (returns 0) while the projector lock is held: that is how a rebuild pauses the
-- live projector without a race, the check and the write being one step.
-- KEYS: lock, checkpoint, record hash, artifact key, run index
-- ARGV: entry id, the fact as JSON (see `projections.store.payload`)
-- The rules placeholder below is filled with `projections.projection.RULES` as JSON.
local RULES = cjson.decode([==[{{rules}}]==])

-- byte order, whatever collation locale the server runs with
local function gt(a, b)
  if a == b then return false end
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a > #b
end

local function id_after(a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  if tonumber(ams) ~= tonumber(bms) then return tonumber(ams) > tonumber(bms) end
  return tonumber(aseq) > tonumber(bseq)
end

-- a status rule {status, fact, message, at, superseded_by} holds when its fact is present and
-- no field of superseded_by is later than the field at (`StatusRule.holds`)
local function holds(h, r)
  if not h[r[2]] then return false end
  for _, later in ipairs(r[5]) do
    if h[later] and gt(h[later], h[r[4]] or '') then return false end
  end
  return true
end

local function derive(key, artifact, rule)
  local flat = redis.call('HGETALL', key)
  local h = {}
  for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
  local status, message, node = rule.fallback, false, false
  for _, r in ipairs(rule.status) do
    if holds(h, r) then
      status = r[1]
      if r[3] ~= '' and h[r[3]] then message = h[r[3]] end
      break
    end
  end
  for _, field in ipairs(rule.node) do
    if h[field] then node = h[field]; break end
  end
  redis.call('HSET', key, 'status', status)
  if message then redis.call('HSET', key, 'message', message)
  else redis.call('HDEL', key, 'message') end
  if node then redis.call('HSET', key, 'node', node)
  else redis.call('HDEL', key, 'node') end
  local target = h[rule.pointer]
  if target and not h['deleted_at'] then redis.call('SET', artifact, target)
  else redis.call('DEL', artifact) end
  return h['deleted_at']
end

if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local f = cjson.decode(ARGV[2])
local at_field, event_field = f.group .. '_at', f.group .. '_event'
local cur = redis.call('HMGET', KEYS[3], at_field, event_field)
if (not cur[1]) or gt(f.at, cur[1]) or (f.at == cur[1] and gt(f.event, cur[2] or '')) then
  redis.call('HSET', KEYS[3], at_field, f.at, event_field, f.event, unpack(f.set))
  if #f.clear > 0 then redis.call('HDEL', KEYS[3], unpack(f.clear)) end
  local deleted = derive(KEYS[3], KEYS[4], RULES[f.kind])
  if deleted then redis.call('ZREM', KEYS[5], f.subject)
  elseif f.score then redis.call('ZADD', KEYS[5], f.score, f.subject) end
end
local checkpoint = redis.call('GET', KEYS[2])
if (not checkpoint) or id_after(ARGV[1], checkpoint) then redis.call('SET', KEYS[2], ARGV[1]) end
return 1
