-- Sends from an actor's own worker (runtime/actor.c, cray__actor_send): a call that finds
-- the actor idle is listed at the worker's next look for work, not under its lock at
-- once. One worker, so that the actors a task makes and the tasks and methods that call
-- them all share it.
local support = require "spec.support"
local cray = support.fresh({workers = 1})

local Log = {
  __name = "LocalLog",
  init = function(self) self.seen = {} end,
  add = function(self, v) self.seen[#self.seen + 1] = v end,
  seen = function(self) return self.seen end,
}

-- Passes a token round a ring of actors made by one task: each hop sends the next.
local Hop = {
  __name = "LocalHop",
  init = function(self, log) self.log = log end,
  link = function(self, next_hop) self.next = next_hop end,
  hop = function(self, n)
    self.log.add.options{num_returns = 0}.remote(n)
    if n > 1 then self.next.hop.options{num_returns = 0}.remote(n - 1) end
  end,
}

describe("a send from the actor's own worker", function()
  it("starts each call once, in the order it was sent", function()
    local seen = cray.get(cray.remote(function(n)
      local log = cray.actor(Log).remote()
      local add = log.add.options{num_returns = 0}
      for i = 1, n do add.remote(i) end
      return cray.get(log.seen.remote())
    end).remote(3000))
    assert.are.equal(3000, #seen)
    for i = 1, 3000 do assert.are.equal(i, seen[i]) end
  end)

  it("carries a token round a ring made by one task, every hop once and in turn", function()
    local seen = cray.get(cray.remote(function(size, hops)
      local log = cray.actor(Log).remote()
      local ring = {}
      for i = 1, size do ring[i] = cray.actor(Hop).remote(log) end
      for i = 1, size do cray.get(ring[i].link.remote(ring[i % size + 1])) end
      ring[1].hop.options{num_returns = 0}.remote(hops)
      while #cray.get(log.seen.remote()) < hops do cray.sleep(0.001) end
      return cray.get(log.seen.remote())
    end).remote(5, 2000))
    assert.are.equal(2000, #seen)
    for i = 1, 2000 do assert.are.equal(2001 - i, seen[i]) end
  end)

  it("fails a call to an actor that died on that worker at once, with actor_died", function()
    local kind = cray.get(cray.remote(function()
      local log = cray.actor(Log).remote()
      local gone = cray.monitor(log)
      cray.kill(log)
      cray.get(gone) -- served on this worker: dead, and its mailbox marked idle again
      local ok, err = pcall(cray.get, log.seen.remote())
      return not ok and err.kind
    end).remote())
    assert.are.equal("actor_died", kind)
  end)
end)
