-- Actors called hard from several tasks at once while they are restarted and killed: the
-- promises that the lock-free inbox (runtime/actor.c) must keep under that load. Each
-- caller is a task on a worker, sending without a lock, while the driver restarts or
-- kills the actor; every call's result is checked.
local support = require "spec.support"
local cray = support.fresh({workers = 2})

local CALLERS, CALLS = 6, 2000

-- Keeps, per caller, the last sequence number seen since its latest init, and how many
-- calls run at once; `take` answers {seq, in order, running now}.
local Ledger = {
  __name = "Ledger",
  init = function(self) self.last, self.active = {}, 0 end,
  take = function(self, caller, seq, pause)
    self.active = self.active + 1
    local running = self.active
    local ordered = (self.last[caller] or 0) < seq
    self.last[caller] = seq
    if pause then cray.sleep(0) end
    self.active = self.active - 1
    return {seq, ordered, running}
  end,
  tell = function(self, caller, seq)
    self.bad = self.bad or ((self.last[caller] or 0) >= seq)
    self.last[caller] = seq
  end,
  bad_order = function(self) return self.bad or false end,
}

-- A task that sends `n` calls to the actor as caller `who`, then gets them all: their
-- results in send order, where a failed call leaves {kind = its error's kind}.
local function call_all(h, who, n, pause)
  local refs = {}
  for seq = 1, n do refs[seq] = h.take.remote(who, seq, pause) end
  local out = {}
  for seq = 1, n do
    local ok, v = pcall(cray.get, refs[seq], {timeout = 60})
    out[seq] = ok and v or {kind = v.kind}
  end
  return out
end

-- Starts CALLERS tasks calling handle h; returns their refs.
local function start_callers(h, n, pause)
  local caller = cray.remote(call_all)
  local refs = {}
  for who = 1, CALLERS do refs[who] = caller.remote(h, who, n, pause) end
  return refs
end

describe("actors under load while restarted and killed", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  it("answer every call of every caller, in each caller's order, across restarts", function()
    local h = cray.actor(Ledger, {max_restarts = -1, max_task_retries = -1}).remote()
    local refs = start_callers(h, CALLS)
    for _ = 1, 20 do
      cray.sleep(0.002)
      cray.kill(h, {no_restart = false})
    end
    for who, got in ipairs(cray.get(refs, {timeout = 120})) do
      assert.are.equal(CALLS, #got)
      for seq, r in ipairs(got) do
        assert.are.equal(seq, r[1], ("caller %d call %d"):format(who, seq))
        assert.is_true(r[2], ("caller %d call %d ran out of order"):format(who, seq))
      end
    end
  end)

  it("keep one-way calls in each caller's order while restarted", function()
    local h = cray.actor(Ledger, {max_restarts = -1, max_task_retries = -1}).remote()
    local teller = cray.remote(function(a, who, n)
      local tell = a.tell.options{num_returns = 0}
      for seq = 1, n do tell.remote(who, seq) end
      return true
    end)
    local refs = {}
    for who = 1, CALLERS do refs[who] = teller.remote(h, who, CALLS * 5) end
    for _ = 1, 10 do
      cray.sleep(0.002)
      cray.kill(h, {no_restart = false})
    end
    cray.get(refs, {timeout = 120})
    assert.is_false(cray.get(h.bad_order.remote(), {timeout = 60}))
  end)

  it("never run more calls at once than max_concurrency, across restarts", function()
    local h = cray.actor(Ledger, {max_restarts = -1, max_task_retries = -1,
                                  max_concurrency = 3}).remote()
    local refs = start_callers(h, CALLS / 4, true)
    for _ = 1, 10 do
      cray.sleep(0.002)
      cray.kill(h, {no_restart = false})
    end
    local most = 0
    for _, got in ipairs(cray.get(refs, {timeout = 120})) do
      for seq, r in ipairs(got) do
        assert.are.equal(seq, r[1])
        if r[3] > most then most = r[3] end
      end
    end
    assert.is_true(most >= 1 and most <= 3, "ran " .. most .. " at once")
  end)

  it("fail every call after a kill, and none before it out of order", function()
    local h = cray.actor(Ledger).remote()
    local watch = cray.monitor(h)
    local refs = start_callers(h, CALLS)
    cray.sleep(0.005)
    cray.kill(h)
    assert.are.equal("killed", cray.get(watch, {timeout = 60}).reason)
    for who, got in ipairs(cray.get(refs, {timeout = 120})) do
      support.check_killed_calls(got, "caller " .. who)
    end
    assert.are.equal("actor_died", support.error_of(cray.get, h.take.remote(0, 1)).kind)
  end)

  it("collect actors that callers made, called and dropped, many times over", function()
    local before = cray.stats().actors.alive
    local churn = cray.remote(function(n)
      local L = cray.actor(Ledger)
      local sum = 0
      for i = 1, n do
        local a = L.remote()
        sum = sum + cray.get(a.take.remote(1, i))[1]
      end
      a = nil
      collectgarbage() -- the handles made here go now, not at this state's next cycle
      return sum
    end)
    local refs = {}
    for i = 1, CALLERS do refs[i] = churn.remote(100) end
    for _, sum in ipairs(cray.get(refs, {timeout = 120})) do assert.are.equal(5050, sum) end
    for _ = 1, 500 do
      support.collect()
      if cray.stats().actors.alive == before then break end
      cray.sleep(0.01)
    end
    assert.are.equal(before, cray.stats().actors.alive)
  end)
end)
