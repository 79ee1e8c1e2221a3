-- The store's scaling table (docs/performance.md, "Scaling"): for each count of live
-- objects, puts a second keeping every ref (`refs[i] = cray.put(i)`), gets a second of
-- every 7th, and resident bytes an object (value, entry, ObjectRef and table slot), then
-- seconds to drop them all and collect. Not part of `make bench`: run by hand, one count
-- per process so that memory freed by one count does not serve the next,
--   for n in 10000 100000 1000000 4000000; do build/crayrun -w 1 bench/scale/store.lua $n; done
local bench = require "bench.lib"
local cray = require "cray"
local table_new = require "table.new"

local n = assert(tonumber(arg[1]), "usage: bench/scale/store.lua COUNT")
collectgarbage()
local before = bench.rss()
local refs = table_new(n, 0)
local t0 = bench.now()
for i = 1, n do refs[i] = cray.put(i) end
local put = n / (bench.now() - t0)
collectgarbage()
local bytes = (bench.rss() - before) / n
local gets = 0
t0 = bench.now()
repeat
  for i = 1, n, 7 do cray.get(refs[i]) end
  gets = gets + math.floor((n + 6) / 7)
until bench.now() - t0 > 0.2
local get = gets / (bench.now() - t0)
t0 = bench.now()
refs = nil
collectgarbage()
local free = bench.now() - t0
print(("| %d | %.2f M/s | %.1f M/s | %.0f B | %.3f s |"):format(n, put / 1e6, get / 1e6, bytes, free))
