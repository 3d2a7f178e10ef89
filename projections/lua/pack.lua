-- Prelude: pack a list of strings into one, `<length>:<bytes>` per item (`events.unpack`
-- splits it), so a reply of many items is one bulk string for the client.
local function pack(items)
  local parts = {}
  for i, item in ipairs(items) do parts[i] = #item .. ':' .. item end
  return table.concat(parts)
end
