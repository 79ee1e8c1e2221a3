-- Savina's PingPong: Ping sends Pong a ping, Pong answers with a pong, N times; both are
-- one-way messages, as Savina's tells are. Ping tells the driver's sink when its N-th pong
-- has come back. Figure: round trips a second. Parameters as the Erlang peer's
-- (peers/erlang/bench.escript pingpong): N = 200,000.
--   build/crayrun bench/savina/pingpong.lua
local bench = require "bench.lib"
local cray = require "cray"

local N = bench.quick and 1000 or 200000
local tell = {num_returns = 0}

local Pong = cray.actor{
  init = function(self) self.pings = 0 end,
  -- The first message: whom to answer.
  meet = function(self, ping) self.answer = ping.pong.options(tell) end,
  ping = function(self)
    self.pings = self.pings + 1
    self.answer.remote()
  end,
  report = function(self) return self.pings end,
}

local Ping = cray.actor{
  init = function(self, pong, n, sink)
    self.send, self.left, self.sink = pong.ping.options(tell), n, sink
  end,
  start = function(self) self.send.remote() end,
  pong = function(self)
    self.left = self.left - 1
    if self.left <= 0 then -- not ==: a pong too many must not start more pings
      self.sink.done.options(tell).remote()
    else
      self.send.remote()
    end
  end,
  report = function(self) return self.left end,
}

bench.measure("savina_pingpong", "per_second", function()
  local sink, finished = bench.sink(1)
  local pong, ping = unpack(bench.make(function(to)
    local pong = Pong.remote()
    local ping = Ping.remote(pong, N, to)
    cray.get(pong.meet.remote(ping))
    return {pong, ping}
  end, sink))
  local t0 = bench.now()
  ping.start.options(tell).remote()
  finished()
  local seconds = bench.now() - t0
  local pings, left = cray.get(pong.report.remote()), cray.get(ping.report.remote())
  if pings ~= N or left ~= 0 then
    error(("pingpong: %d pings answered, %d pongs still awaited; expected %d and 0")
          :format(pings, left, N))
  end
  return N / seconds
end)
