-- Ray's Queue example in Lua: the driver puts work in a queue, two consumer tasks take it
-- until it stays empty for a second. The queue is a value: it travels to the tasks.
--   crayrun examples/queue.lua
local cray = require "cray"
local util = require "cray.util"

local queue = util.Queue{maxsize = 100}

local consumer = cray.remote(function(id, q)
  local got = {}
  while true do
    local ok, item = pcall(q.get, q, {block = true, timeout = 1})
    if not ok then
      assert(item.kind == "empty", tostring(item))
      return got
    end
    got[#got + 1] = item
  end
end)

for i = 0, 9 do queue:put(i) end
print("Put work 0 - 9 to queue...")
local consumers = {}
for id = 1, 2 do consumers[id] = consumer.remote(id, queue) end
local all = {}
for _, got in ipairs(cray.get(consumers)) do
  for _, item in ipairs(got) do all[#all + 1] = item end
end
table.sort(all)
print("consumed: " .. table.concat(all, " "))
