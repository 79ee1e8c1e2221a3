-- Savina's Big: N actors; each sends P pings, one at a time, each to a neighbour picked at
-- random, and sends the next when the pong for the last has come back; every actor
-- answers every ping with a pong. All are one-way messages. An actor tells the driver's
-- sink when its P-th pong has come. Figure: pings (each with its pong) a second;
-- N = 120, P = 20,000.
--   build/crayrun bench/savina/big.lua
local bench = require "bench.lib"
local cray = require "cray"

local N, P = 120, bench.quick and 100 or 20000
local tell = {num_returns = 0}

-- Pings a random neighbour (any actor but this one), from a Park-Miller generator of the
-- actor's own, so that runs repeat.
local function ping_one(self)
  self.seed = self.seed * 16807 % 2147483647
  local j = self.seed % (N - 1) + 1
  if j >= self.i then j = j + 1 end
  self.sent = self.sent + 1
  self.pings[j].remote(self.i)
end

local Big = cray.actor{
  init = function(self, i, sink)
    self.i, self.seed, self.sink = i, i, sink
    self.sent, self.answered = 0, 0
  end,
  neighbours = function(self, all)
    self.pings, self.pongs = {}, {}
    for j, h in ipairs(all) do
      self.pings[j], self.pongs[j] = h.ping.options(tell), h.pong.options(tell)
    end
  end,
  start = ping_one,
  ping = function(self, from)
    self.answered = self.answered + 1
    self.pongs[from].remote()
  end,
  pong = function(self)
    if self.sent >= P then -- not ==: a pong too many must not start more pings
      self.sink.done.options(tell).remote()
    else
      ping_one(self)
    end
  end,
  report = function(self) return self.sent, self.answered end,
}

bench.measure("savina_big", "per_second", function()
  local sink, finished = bench.sink(N)
  local actors, ready = {}, {}
  for i = 1, N do actors[i] = Big.remote(i, sink) end
  for i = 1, N do ready[i] = actors[i].neighbours.remote(actors) end
  cray.get(ready)
  local t0 = bench.now()
  for i = 1, N do actors[i].start.options(tell).remote() end
  finished()
  local seconds = bench.now() - t0
  local answered = 0
  for i = 1, N do
    local sent, got = cray.get(actors[i].report.remote())
    if sent ~= P then error(("big: actor %d sent %d pings, not %d"):format(i, sent, P)) end
    answered = answered + got
  end
  if answered ~= N * P then
    error(("big: %d pings answered of the %d sent"):format(answered, N * P))
  end
  return N * P / seconds
end)
