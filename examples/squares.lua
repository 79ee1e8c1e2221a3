-- squares.lua: square numbers in parallel tasks, then add them up.
--   crayrun examples/squares.lua 10
local cray = require "cray"

local square = cray.remote(function(x) return x * x end)

local n = tonumber(arg and arg[1]) or 10
local refs = {}
for i = 1, n do refs[i] = square.remote(i) end  -- returns at once: one ObjectRef per task

local squares = cray.get(refs)                   -- waits; one value per ref, in order
local total = 0
for _, v in ipairs(squares) do total = total + v end

print(("squares of 1..%d: %s"):format(n, table.concat(squares, " ")))
print(("sum: %d"):format(total))
