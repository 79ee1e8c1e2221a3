-- Savina's Counting: N one-way increments to a counter actor, then ask it the total. The
-- driver is Savina's producer, as in the Erlang peer (peers/erlang/bench.escript
-- counting). Figure: increments a second; N = 1,000,000.
--   build/crayrun bench/savina/counting.lua
local bench = require "bench.lib"
local cray = require "cray"

local N = bench.quick and 1000 or 1000000

local Counter = cray.actor{
  init = function(self) self.n = 0 end,
  incr = function(self) self.n = self.n + 1 end,
  total = function(self) return self.n end,
}

bench.measure("savina_counting", "per_second", function()
  local counter = Counter.remote()
  local incr = counter.incr.options{num_returns = 0}
  local t0 = bench.now()
  for _ = 1, N do incr.remote() end
  local total = cray.get(counter.total.remote()) -- after the increments: one caller's order
  local seconds = bench.now() - t0
  if total ~= N then error(("counting: the counter counted %d of %d"):format(total, N)) end
  return N / seconds
end)
