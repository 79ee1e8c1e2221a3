-- Actors that move between workers while they are called (runtime/actor.c, "moving"): an
-- actor made by a task starts on the task's worker, and one of a worker's ready actors
-- moves to a worker that sleeps. Tasks make the actors here, so that they start together
-- on one worker and the other has reason to take some; callers are tasks on both workers,
-- and the driver kills and restarts meanwhile. Moves depend on timing, so the workloads
-- run again until cray.stats() counts some (every round is checked in full either way).
local support = require "spec.support"
local cray = support.fresh({workers = 2})

local ACTORS, CALLERS, CALLS, ROUNDS = 4, 4, 200, 40

-- Keeps, per caller, the last sequence number seen since its latest init and how many
-- calls came, with some nesting and a handle to check after moves; `take` answers {seq,
-- in order, the worker it ran on}.
local Ledger = {
  __name = "Ledger",
  init = function(self, peer)
    self.last, self.count, self.workers = {}, {}, {}
    self.deep, self.peer = {a = {b = {c = 1}}, list = {1, 2, 3}}, peer
  end,
  take = function(self, caller, seq)
    local ordered = (self.last[caller] or 0) < seq
    self.last[caller] = seq
    self.count[caller] = (self.count[caller] or 0) + 1
    local w = cray.context().worker
    self.workers[w] = true
    return {seq, ordered, w}
  end,
  counts = function(self) return self.count end,
  workers = function(self)
    local n = 0
    for _ in pairs(self.workers) do n = n + 1 end
    return n
  end,
  state = function(self)
    return {self.deep.a.b.c, #self.deep.list, self.peer and cray.get(self.peer.where.remote())}
  end,
}

-- An actor whose instance holds a function: it cannot be packed, so it stays put.
local Fixed = {
  __name = "Fixed",
  init = function(self) self.f = function() return cray.context().worker end end,
  take = function(self, caller, seq) return {seq, true, self.f()} end,
}

local Peer = {__name = "Peer", where = function() return "peer" end}

-- A task that makes n actors of class cls (with `opts`) on its worker; returns handles.
local function make_all(cls, opts, n, ...)
  local C = cray.actor(cls, opts)
  local out = {}
  for i = 1, n do out[i] = C.remote(...) end
  return out
end

-- A caller task: `n` calls to each actor in turn as caller `who`, then their results, in
-- send order per actor; a failed call leaves {kind = its error's kind}.
local function call_all(actors, who, n)
  local refs = {}
  for seq = 1, n do
    for i, a in ipairs(actors) do
      refs[i] = refs[i] or {}
      refs[i][seq] = a.take.remote(who, seq)
    end
  end
  local out = {}
  for i in ipairs(actors) do
    out[i] = {}
    for seq = 1, n do
      local ok, v = pcall(cray.get, refs[i][seq], {timeout = 60})
      out[i][seq] = ok and v or {kind = v.kind}
    end
  end
  return out
end

local function moved() return cray.stats().actors.moved end

-- Collects garbage in the driver and, through tasks, in the workers' states, where the
-- callers and makers left handles; until the refs in `watches` are ready.
local function collect_until(watches)
  local sweep = cray.remote(function() collectgarbage() collectgarbage() return true end)
  for _ = 1, 200 do
    support.collect()
    local refs = {}
    for i = 1, 8 do refs[i] = sweep.remote() end
    cray.get(refs)
    if #cray.wait(watches, {num_returns = #watches, timeout = 0.05}) == #watches then return end
  end
end

-- Makes ACTORS actors from a task, starts CALLERS callers on them, calls during(actors)
-- meanwhile; returns the actors and the callers' results.
local function round(cls, opts, during, ...)
  local actors = cray.get(cray.remote(make_all).remote(cls, opts, ACTORS, ...))
  local caller = cray.remote(call_all)
  local refs = {}
  for who = 1, CALLERS do refs[who] = caller.remote(actors, who, CALLS) end
  if during then during(actors) end
  return actors, cray.get(refs, {timeout = 120})
end

-- Checks every caller got every answer, in its order.
local function check_all_answered(results)
  for who, per in ipairs(results) do
    for i, got in ipairs(per) do
      assert.are.equal(CALLS, #got)
      for seq, r in ipairs(got) do
        assert.is_nil(r.kind, ("caller %d actor %d call %d failed"):format(who, i, seq))
        assert.are.equal(seq, r[1])
        assert.is_true(r[2], ("caller %d actor %d call %d ran out of order"):format(who, i, seq))
      end
    end
  end
end

describe("actors that move between workers", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  it("start on the worker of the task that made them", function()
    local probe = cray.remote(function()
      local a = cray.actor(Ledger).remote()
      return {cray.context().worker, cray.get(a.take.remote(1, 1))[3]}
    end)
    local refs = {}
    for i = 1, 8 do refs[i] = probe.remote() end
    for _, r in ipairs(cray.get(refs)) do assert.are.equal(r[1], r[2]) end
  end)

  it("answer each call once, in each caller's order, while they move", function()
    local before, travelled = moved(), false
    for _ = 1, ROUNDS do
      local peer = cray.actor(Peer).remote()
      local actors, results = round(Ledger, nil, nil, peer)
      check_all_answered(results)
      for _, a in ipairs(actors) do
        local counts = cray.get(a.counts.remote())
        for who = 1, CALLERS do assert.are.equal(CALLS, counts[who]) end
        assert.are.same({1, 3, "peer"}, cray.get(a.state.remote()))
        travelled = travelled or cray.get(a.workers.remote()) > 1
      end
      if travelled and moved() > before then break end
    end
    assert.is_true(moved() > before, "no actor moved")
    assert.is_true(travelled, "no actor ran on two workers")
  end)

  it("keep each caller's order across restarts while they move", function()
    local before = moved()
    for _ = 1, ROUNDS do
      local _, results = round(Ledger, {max_restarts = -1, max_task_retries = -1},
                               function(actors)
        for k = 1, 20 do
          cray.sleep(0.001)
          cray.kill(actors[k % ACTORS + 1], {no_restart = false})
        end
      end)
      check_all_answered(results)
      if moved() > before then break end
    end
    assert.is_true(moved() > before, "no actor moved")
  end)

  it("fail calls only after a kill, while they move, and tell monitors", function()
    local before = moved()
    for _ = 1, ROUNDS do
      local watches = {}
      local actors, results = round(Ledger, nil, function(actors)
        for i, a in ipairs(actors) do watches[i] = cray.monitor(a) end
        for _ = 1, 50 do -- kill once one has moved, or soon
          if moved() > before then break end
          cray.sleep(0.001)
        end
        for _, a in ipairs(actors) do cray.kill(a) end
      end)
      for _, w in ipairs(watches) do
        assert.are.equal("killed", cray.get(w, {timeout = 60}).reason)
      end
      for who, per in ipairs(results) do
        for i, got in ipairs(per) do
          support.check_killed_calls(got, ("caller %d actor %d"):format(who, i))
        end
      end
      for _, a in ipairs(actors) do
        assert.are.equal("actor_died", support.error_of(cray.get, a.take.remote(0, 1)).kind)
      end
      if moved() > before then break end
    end
    assert.is_true(moved() > before, "no actor moved")
  end)

  it("are collected when their handles go, moved or not", function()
    local alive, before = cray.stats().actors.alive, moved()
    for _ = 1, ROUNDS do
      local actors, results = round(Ledger)
      check_all_answered(results)
      local watches = {}
      for i, a in ipairs(actors) do watches[i] = cray.monitor(a) end
      actors, results = nil, nil
      collect_until(watches)
      for _, w in ipairs(watches) do
        assert.are.equal("collected", cray.get(w, {timeout = 60}).reason)
      end
      if moved() > before then break end
    end
    assert.is_true(moved() > before, "no actor moved")
    for _ = 1, 500 do
      if cray.stats().actors.alive == alive then break end
      cray.sleep(0.01)
    end
    assert.are.equal(alive, cray.stats().actors.alive)
  end)

  it("keep an actor whose instance holds a function on its worker", function()
    for _ = 1, 5 do
      local _, results = round(Fixed)
      local home = {}
      for _, per in ipairs(results) do
        for i, got in ipairs(per) do
          for seq, r in ipairs(got) do
            assert.is_nil(r.kind)
            home[i] = home[i] or r[3]
            assert.are.equal(home[i], r[3], ("actor %d call %d ran elsewhere"):format(i, seq))
          end
        end
      end
    end
  end)
end)
