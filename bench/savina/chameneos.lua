-- Savina's Chameneos: C chameneos meet, two at a time, at one mall actor, M times in all.
-- A chameneo tells the mall its colour; the mall keeps the first of a pair waiting and,
-- when the second comes, tells each the other's colour; each takes the complement of the
-- two and goes back to the mall. Once the M meetings are done the mall tells every
-- chameneo that comes to stop, and each tells it how many meetings it had; when all have,
-- the mall tells the driver's sink. All are one-way messages. Figure: meetings a second;
-- C = 100, M = 200,000.
--   build/crayrun bench/savina/chameneos.lua
local bench = require "bench.lib"
local cray = require "cray"

local C, M = 100, bench.quick and 1000 or 200000
local tell = {num_returns = 0}

-- Colours are 1, 2, 3; two that differ make the third.
local function complement(a, b)
  return a == b and a or 6 - a - b
end

local Mall = cray.actor{
  init = function(self, meetings, sink)
    self.left, self.sink, self.stopped, self.total = meetings, sink, 0, 0
  end,
  open = function(self, chameneos)
    self.met, self.stop = {}, {}
    for i, h in ipairs(chameneos) do
      self.met[i], self.stop[i] = h.met.options(tell), h.stop.options(tell)
    end
  end,
  meet = function(self, i, colour)
    if self.left == 0 then
      self.stop[i].remote()
    elseif self.waiting then
      self.left = self.left - 1
      self.met[self.waiting].remote(colour)
      self.met[i].remote(self.waiting_colour)
      self.waiting = nil
    else
      self.waiting, self.waiting_colour = i, colour
    end
  end,
  faded = function(self, meetings)
    self.stopped, self.total = self.stopped + 1, self.total + meetings
    if self.stopped == C then self.sink.done.options(tell).remote() end
  end,
  report = function(self) return self.left, self.stopped, self.total end,
}

local Chameneo = cray.actor{
  init = function(self, i, colour, mall)
    self.i, self.colour, self.meetings = i, colour, 0
    self.to_mall, self.fade = mall.meet.options(tell), mall.faded.options(tell)
  end,
  start = function(self) self.to_mall.remote(self.i, self.colour) end,
  met = function(self, other)
    self.colour = complement(self.colour, other)
    self.meetings = self.meetings + 1
    self.to_mall.remote(self.i, self.colour)
  end,
  stop = function(self) self.fade.remote(self.meetings) end,
}

bench.measure("savina_chameneos", "per_second", function()
  local sink, finished = bench.sink(1)
  local mall = Mall.remote(M, sink)
  local chameneos = {}
  for i = 1, C do chameneos[i] = Chameneo.remote(i, i % 3 + 1, mall) end
  cray.get(mall.open.remote(chameneos))
  local t0 = bench.now()
  for i = 1, C do chameneos[i].start.options(tell).remote() end
  finished()
  local seconds = bench.now() - t0
  local left, stopped, total = cray.get(mall.report.remote())
  if left ~= 0 or stopped ~= C or total ~= 2 * M then
    error(("chameneos: %d meetings left, %d chameneos stopped, %d meetings counted by them;"
           .. " expected 0, %d, %d"):format(left, stopped, total, C, 2 * M))
  end
  return M / seconds
end)
