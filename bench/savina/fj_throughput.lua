-- Savina's Fork-Join throughput: one sender (the driver) sends M one-way messages to each
-- of W actors, in rounds (each actor one message a round), then asks each how many it
-- received. Figure: messages a second; W = 60, M = 10,000, as in the Erlang peer
-- (peers/erlang/bench.escript fj_throughput).
--   build/crayrun bench/savina/fj_throughput.lua
local bench = require "bench.lib"
local cray = require "cray"

local W, M = 60, bench.quick and 100 or 10000

-- Counts its messages, and that they came in the order sent (message j is the j-th).
local Worker = cray.actor{
  init = function(self) self.n, self.in_order = 0, true end,
  msg = function(self, j)
    self.n = self.n + 1
    self.in_order = self.in_order and j == self.n
  end,
  received = function(self) return self.n, self.in_order end,
}

bench.measure("savina_fj_throughput", "per_second", function()
  local workers, sends = {}, {}
  for w = 1, W do
    workers[w] = Worker.remote()
    sends[w] = workers[w].msg.options{num_returns = 0}
  end
  local t0 = bench.now()
  for j = 1, M do
    for w = 1, W do sends[w].remote(j) end
  end
  local counts = {}
  for w = 1, W do counts[w] = workers[w].received.remote() end
  for w = 1, W do
    local n, in_order = cray.get(counts[w])
    if n ~= M or not in_order then
      error(("fj_throughput: actor %d received %d of %d messages%s"):format(w, n, M,
            in_order and "" or ", out of order"))
    end
  end
  return W * M / (bench.now() - t0)
end)
