-- Savina's Thread Ring: R actors in a ring pass a token, a one-way message carrying the
-- hops left, each to the next, H times; the actor that gets it with none left tells the
-- driver's sink. Figure: hops a second; R = 100, H = 1,000,000, as in the Erlang peer
-- (peers/erlang/bench.escript threadring).
--   build/crayrun bench/savina/thread_ring.lua
local bench = require "bench.lib"
local cray = require "cray"

local R, H = 100, bench.quick and 1000 or 1000000
local tell = {num_returns = 0}

local Node = cray.actor{
  init = function(self, sink) self.sink, self.passed = sink, 0 end,
  link = function(self, next_node) self.next = next_node.token.options(tell) end,
  token = function(self, hops)
    if hops == 0 then
      self.sink.done.options(tell).remote()
    else
      self.passed = self.passed + 1
      self.next.remote(hops - 1)
    end
  end,
  report = function(self) return self.passed end,
}

bench.measure("savina_thread_ring", "per_second", function()
  local sink, finished = bench.sink(1)
  local ring = bench.make(function(to)
    local made, links = {}, {}
    for i = 1, R do made[i] = Node.remote(to) end
    for i = 1, R do links[i] = made[i].link.remote(made[i % R + 1]) end
    cray.get(links)
    return made
  end, sink)
  local t0 = bench.now()
  ring[1].token.options(tell).remote(H)
  finished()
  local seconds = bench.now() - t0
  -- Hop k (k = 0 .. H-1) leaves node k % R + 1.
  for i = 1, R do
    local passed = cray.get(ring[i].report.remote())
    local expected = i <= H and math.floor((H - i) / R) + 1 or 0
    if passed ~= expected then
      error(("thread_ring: node %d passed the token %d times, not %d"):format(i, passed,
            expected))
    end
  end
  return H / seconds
end)
