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
    if self.at and self.at ~= w then self.hopped = (self.hopped or 0) + 1 end
    self.at = w
    return {seq, ordered, w}
  end,
  hops = function(self) return self.hopped or 0 end,
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

-- A pair and a ring made by the driver start on both workers (its creations go to the
-- workers in turn); each actor called only from the other, lower-numbered worker moves
-- there (runtime/actor.c, "moving": toward the caller).
local tell = {num_returns = 0}

local Pong = {
  __name = "Pong",
  meet = function(self, ping) self.answer = ping.pong.options(tell) end,
  ping = function(self) self.answer.remote() end,
  where = function() return cray.context().worker end,
}

local Ping = {
  __name = "Ping",
  init = function(self, pong) self.send, self.got = pong.ping.options(tell), 0 end,
  serve = function(self, n) self.left = n self.send.remote() end,
  pong = function(self)
    self.got = self.got + 1
    self.left = self.left - 1
    if self.left > 0 then self.send.remote() end
  end,
  got = function(self) return self.got end,
  where = function() return cray.context().worker end,
}

-- A ring's node: passes the token on `hops` times, counting what it saw.
local Node = {
  __name = "Node",
  init = function(self) self.seen = 0 end,
  link = function(self, nxt) self.next = nxt.token.options(tell) end,
  token = function(self, hops)
    self.seen = self.seen + 1
    if hops > 0 then self.next.remote(hops - 1) end
  end,
  seen = function(self) return self.seen end,
  where = function() return cray.context().worker end,
}

-- Where each of `actors` runs now, asked one at a time: two calls listed at once on one
-- worker, the other asleep, would have balance give one away.
local function homes(actors)
  local out = {}
  for i, a in ipairs(actors) do out[i] = cray.get(a.where.remote()) end
  return out
end

local function together(where)
  for i = 2, #where do
    if where[i] ~= where[1] then return false end
  end
  return true
end

-- Waits until f() is true, up to 60 s, looking seldom: a look lists an actor, which
-- beside another listed would have balance give one away.
local function until_true(f)
  for _ = 1, 1200 do
    cray.sleep(0.05)
    if f() then return end
  end
end

-- An actor that calls others in turn, awaiting each answer: an actor elsewhere sees a run
-- of calls from this one's worker.
local Turn = {
  __name = "Turn",
  run = function(_, actors, who, n)
    local out = {}
    for i, a in ipairs(actors) do
      out[i] = {}
      for seq = 1, n do
        local ok, v = pcall(cray.get, a.take.remote(who, seq), {timeout = 60})
        out[i][seq] = ok and v or {kind = v.kind}
      end
    end
    return out
  end,
  where = function() return cray.context().worker end,
}

describe("actors that move toward their caller", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  it("gather a pingpong pair made by the driver on one worker", function()
    local before = moved()
    local pong = cray.actor(Pong).remote()
    local ping = cray.actor(Ping).remote(pong)
    cray.get(pong.meet.remote(ping))
    assert.is_false(together(homes({pong, ping})), "the driver made the pair on one worker")
    local rounds = 0
    repeat
      rounds = rounds + 1
      local want = cray.get(ping.got.remote()) + 100
      ping.serve.options(tell).remote(100)
      until_true(function() return cray.get(ping.got.remote()) == want end)
      assert.are.equal(want, cray.get(ping.got.remote()))
    until together(homes({pong, ping})) or rounds == 20
    assert.is_true(together(homes({pong, ping})), "the pair stayed on two workers")
    assert.is_true(moved() > before, "no actor moved")
  end)

  it("gather a ring made by the driver on one worker", function()
    local before, R = moved(), 10
    local ring = {}
    for i = 1, R do ring[i] = cray.actor(Node).remote() end
    local links = {}
    for i = 1, R do links[i] = ring[i].link.remote(ring[i % R + 1]) end
    cray.get(links)
    assert.is_false(together(homes(ring)), "the driver made the ring on one worker")
    local laps = 0
    repeat
      laps = laps + 20
      ring[1].token.options(tell).remote(20 * R - 1)
      until_true(function() return cray.get(ring[R].seen.remote()) == laps end)
      for i = 1, R do assert.are.equal(laps, cray.get(ring[i].seen.remote())) end
    until together(homes(ring)) or laps == 400
    assert.is_true(together(homes(ring)), "the ring stayed on more than one worker")
    assert.is_true(moved() - before >= R / 2, "fewer moves than the ring's spread")
  end)

  it("answer each call once, in each caller's order, while they move both ways", function()
    local before, both = moved(), false
    local turns = {cray.actor(Turn).remote(), cray.actor(Turn).remote()}
    local turn = cray.get(turns[1].where.remote()) == 0 and turns[1] or turns[2]
    assert.are.equal(0, cray.get(turn.where.remote()))
    local flood = cray.remote(call_all)
    for _ = 1, ROUNDS do
      local actors = {}
      for i = 1, ACTORS do actors[i] = cray.actor(Ledger).remote() end
      -- runs of calls from worker 0 gather the actors there; then floods from tasks on
      -- both workers list them all at once there, balance gives some to worker 1, and the
      -- runs, going on, bring them back
      local results = {cray.get(turn.run.remote(actors, 1, CALLS), {timeout = 120})}
      local refs = {turn.run.remote(actors, 2, CALLS)}
      for who = 3, CALLERS + 2 do refs[#refs + 1] = flood.remote(actors, who, CALLS) end
      for _, r in ipairs(cray.get(refs, {timeout = 120})) do results[#results + 1] = r end
      check_all_answered(results)
      for _, a in ipairs(actors) do
        local counts = cray.get(a.counts.remote())
        for who = 1, CALLERS + 2 do assert.are.equal(CALLS, counts[who]) end
        both = both or cray.get(a.hops.remote()) >= 2
      end
      if both then break end
    end
    assert.is_true(moved() > before, "no actor moved")
    assert.is_true(both, "no actor moved away and back")
  end)
end)
