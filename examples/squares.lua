-- squares.lua: put values in cray's object store, pass their refs around, read them back.
--   crayrun examples/squares.lua 10
local cray = require "cray"

local n = tonumber(arg and arg[1]) or 10
local refs = {}
for i = 1, n do refs[i] = cray.put(i * i) end

local squares = cray.get(refs)           -- one value per ref, in order
local total = 0
for _, v in ipairs(squares) do total = total + v end

print(("squares of 1..%d: %s"):format(n, table.concat(squares, " ")))
print(("sum: %d"):format(total))
