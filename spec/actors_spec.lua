local support = require "spec.support"
local cray = support.fresh({workers = 2})

local Counter = {
  __name = "Counter",
  init = function(self, n) self.n = n or 0 end,
  incr = function(self, k) self.n = self.n + (k or 1); return self.n end,
  get = function(self) return self.n end,
  fail = function(self, msg) error(msg, 0) end,
}

-- Records the order calls start and end in, and how many run at once.
local Log = {
  __name = "Log",
  init = function(self) self.seen, self.active, self.most = {}, 0, 0 end,
  add = function(self, x, pause)
    self.active = self.active + 1
    if self.active > self.most then self.most = self.active end
    if pause then cray.sleep(pause) end
    self.seen[#self.seen + 1] = x
    self.active = self.active - 1
    return x
  end,
  seen_all = function(self) return self.seen, self.most end,
}

local function alive() return cray.stats().actors.alive end

-- Polls until fn() is true (the runtime acts on another thread); fails after 5 s.
local function eventually(fn, what)
  for _ = 1, 500 do
    support.collect()
    if fn() then return end
    cray.sleep(0.01)
  end
  error("never happened: " .. what)
end

describe("actor classes", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  it("make actors whose methods run on their instance and return refs", function()
    local c = cray.actor(Counter).remote(10)
    local r = c.incr.remote(5)
    assert.is_true(tostring(r):match("^ObjectRef") ~= nil)
    assert.are.equal(15, cray.get(r))
    assert.are.equal(16, cray.get(c.incr.remote()))
  end)

  it("keep one instance per actor", function()
    local A = cray.actor(Counter)
    local a, b = A.remote(0), A.remote(100)
    cray.get({a.incr.remote(), b.incr.remote()})
    assert.are.same({1, 101}, cray.get({a.get.remote(), b.get.remote()}))
  end)

  it("load a class named as 'module.Class'", function()
    local acct = cray.actor("spec.fixtures.account.Account").remote(10)
    assert.are.equal(15, cray.get(acct.deposit.remote(5)))
  end)

  it("fail a call at its call site when the class lacks the method, naming both", function()
    local c = cray.actor(Counter).remote()
    local ok, e = pcall(function() return c.decr end)
    assert.is_false(ok)
    assert.are.equal("invalid_argument", e.kind)
    assert.matches("actor class 'Counter' has no method 'decr'", e.message)
    assert.matches("actors_spec.lua:%d+", e.message)
  end)

  it("refuse to call init again", function()
    local c = cray.actor(Counter).remote()
    assert.matches("init is its constructor", support.error_of(function() return c.init end).message)
  end)

  it("say to use the dot when called with a colon", function()
    local A = cray.actor(Counter)
    assert.matches("with a dot", support.error_of(function() return A:remote() end).message)
    local c = A.remote()
    assert.matches("with a dot", support.error_of(function() return c.incr:remote() end).message)
  end)

  it("refuse a method called with a colon or without .remote, saying what to write", function()
    local c = cray.actor(Counter).remote(1)
    local e = support.error_of(function() local r = c:incr(5) return r end)
    assert.are.equal("invalid_argument", e.kind)
    assert.matches("actors_spec.lua:%d+: call h.incr.remote%(...%) to call actor method "
                   .. "'Counter.incr': h:incr%(...%) passes the handle itself as the first "
                   .. "argument", e.message)
    assert.matches("call h.incr.remote%(...%) to call actor method 'Counter.incr', not "
                   .. "h.incr%(...%)", support.error_of(function() return c.incr(5) end).message)
    assert.matches("call h.incr.remote%(...%)",
                   support.error_of(function() return c.incr.options{num_returns = 1}(5) end)
                     .message)
    assert.are.equal(1, cray.get(c.get.remote()))
    local incr = c.incr.remote
    assert.are.same({2, 3}, {cray.get(incr(1)), cray.get(incr(1))})
  end)

  it("refuse a class or a handle called as a function, saying what to write", function()
    local A = cray.actor(Counter)
    assert.matches("call A.remote%(...%) to make an actor of class 'Counter', not A%(...%)",
                   support.error_of(function() return A(1) end).message)
    assert.matches("ActorHandle%(Counter, %x+%) cannot be called: call one of its methods",
                   support.error_of(function() return A.remote()(1) end).message)
  end)

  it("refuse an empty name, and get_if_exists without a name", function()
    local A = cray.actor(Counter)
    assert.matches([[Counter.options: option 'name' must be a non%-empty string %(got ""%)]],
                   support.error_of(A.options, {name = ""}).message)
    assert.matches("Counter.options: option 'name' must be a non%-empty string %(got a table%)",
                   support.error_of(A.options, {name = {}}).message)
    assert.matches("Counter: option 'get_if_exists' needs option 'name'",
                   support.error_of(A.options, {get_if_exists = true}).message)
  end)

  it("refuse what is not a class, and unknown or bad options, naming them", function()
    assert.matches("expects a class", support.error_of(cray.actor, 42).message)
    assert.matches("'module.Class'", support.error_of(cray.actor, "nodots").message)
    assert.matches("init must be a function", support.error_of(cray.actor, {init = 1}).message)
    local A = cray.actor(Counter)
    assert.matches("unknown option 'colour'", support.error_of(A.options, {colour = 1}).message)
    assert.matches("option 'max_concurrency' must be a whole number from 1",
                   support.error_of(A.options, {max_concurrency = 0}).message)
    local c = A.remote()
    assert.matches("unknown option 'retries'",
                   support.error_of(c.incr.options, {retries = 1}).message)
  end)

  it("name a class by its __name, or by where it is defined", function()
    local c = cray.actor({get = function() return 1 end}).remote()
    assert.matches("^ActorHandle%(Actor%(.*actors_spec.lua:%d+%)",
                   tostring(c))
    assert.matches("^ActorHandle%(Counter, %x+%)$", tostring(cray.actor(Counter).remote()))
  end)

  it("return every value of a method, or num_returns refs, or none", function()
    local c = cray.actor({pair = function() return 1, 2 end}).remote()
    assert.are.same({1, 2}, {cray.get(c.pair.remote())})
    local a, b = c.pair.options{num_returns = 2}.remote()
    assert.are.same({1, 2}, {cray.get(a), cray.get(b)})
    assert.are.equal(0, select("#", c.pair.options{num_returns = 0}.remote()))
  end)

  it("call each method as its own options say, however many specs are in use", function()
    -- 300 method names, each with two options: more specs than a state keeps. Each is
    -- called through a copy the codec made (as a moved actor's instance holds them).
    local class = {}
    for k = 1, 300 do
      class["m" .. k] = k % 2 == 0 and function(self, x) return k, -x end
                                   or function(self, x) return k end
    end
    local P = cray.actor(class)
    local methods = {}
    for i = 1, 600 do
      local k = (i - 1) % 300 + 1
      local m = P.remote()["m" .. k]
      local n = 1 + (k + 1) % 2
      methods[i] = cray.get(cray.put({m.options{num_returns = n}, m.options{num_returns = 0},
                                      k = k, n = n}))
    end
    for round = 1, 2 do
      for i, m in ipairs(methods) do
        local refs = {m[1].remote(i)}
        assert.are.equal(m.n, #refs)
        assert.are.equal(m.k, cray.get(refs[1]))
        if m.n == 2 then assert.are.equal(-i, cray.get(refs[2])) end
        assert.are.equal(0, select("#", m[2].remote(round)))
      end
    end
  end)
end)

describe("actor call order", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  it("runs the calls of one caller in the order sent, one at a time", function()
    local log = cray.actor(Log).remote()
    for i = 1, 200 do log.add.remote(i, i % 50 == 0 and 0.001 or nil) end
    local seen, most = cray.get(log.seen_all.remote())
    for i = 1, 200 do assert.are.equal(i, seen[i]) end
    assert.are.equal(1, most)
  end)

  it("keeps the order when an earlier call waits for a pending argument", function()
    local slow = cray.remote(function() cray.sleep(0.1); return "first" end)
    local log = cray.actor(Log).remote()
    log.add.remote(slow.remote())
    log.add.remote("second")
    assert.are.same({"first", "second"}, (cray.get(log.seen_all.remote())))
  end)

  it("fails a call whose argument failed, without running it", function()
    local bad = cray.remote(function() error("bad input", 0) end)
    local log = cray.actor(Log).remote()
    local e = support.error_of(cray.get, log.add.remote(bad.remote()))
    assert.are.equal("task_error", e.kind)
    assert.matches("argument 1 failed", e.message)
    assert.matches("bad input", e.cause.message)
    assert.are.same({}, (cray.get(log.seen_all.remote())))
  end)

  it("interleaves calls at yield points with max_concurrency > 1", function()
    local log = cray.actor(Log, {max_concurrency = 4}).remote()
    local refs = {}
    for i = 1, 4 do refs[i] = log.add.remote(i, 0.2) end
    cray.get(refs)
    local _, most = cray.get(log.seen_all.remote())
    assert.are.equal(4, most)
  end)

  it("lets a method wait for other actors and tasks without blocking its worker", function()
    cray = support.fresh({workers = 1})
    local A = cray.actor({
      ask = function(self, other) return cray.get(other.get.remote()) + 1 end,
    })
    local c = cray.actor(Counter).remote(41)
    assert.are.equal(42, cray.get(A.remote().ask.remote(c)))
  end)
end)

describe("actor handles", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  it("pass to tasks, which call the actor", function()
    local c = cray.actor(Counter).remote()
    local bump = cray.remote(function(h, n)
      for _ = 1, n do h.incr.remote() end
      return cray.get(h.get.remote())
    end)
    cray.get({bump.remote(c, 10), bump.remote(c, 10)})
    assert.are.equal(20, cray.get(c.get.remote()))
  end)

  it("pass to other actors, and live inside stored objects", function()
    local c = cray.actor(Counter).remote()
    local Relay = cray.actor({
      init = function(self, box) self.target = box.counter end,
      poke = function(self) return cray.get(self.target.incr.remote(2)) end,
    })
    local box = cray.put({counter = c})
    local r = Relay.remote(cray.get(box))
    assert.are.equal(2, cray.get(r.poke.remote()))
    assert.are.equal(c, cray.get(box).counter)
  end)

  it("give a method its own handle with cray.self", function()
    local Selfish = cray.actor({
      init = function(self) self.n = 0 end,
      me = function() return cray.self() end,
      twice = function(self)
        cray.self().incr.options{num_returns = 0}.remote()
        self.n = self.n + 1
        return self.n
      end,
      incr = function(self) self.n = self.n + 10 end,
      get = function(self) return self.n end,
    })
    local s = Selfish.remote()
    assert.are.equal(s, cray.get(s.me.remote()))
    assert.are.equal(1, cray.get(s.twice.remote()))
    assert.are.equal(11, cray.get(s.get.remote()))
    assert.matches("only an actor's method", support.error_of(cray.self).message)
    assert.matches("only an actor's method", support.error_of(cray.exit_actor).message)
  end)

  it("find a named actor with cray.get_actor, and refuse an unknown name", function()
    cray.actor(Counter).options{name = "hits"}.remote(7)
    assert.are.equal(8, cray.get(cray.get_actor("hits").incr.remote()))
    local e = support.error_of(cray.get_actor, "misses")
    assert.matches("no actor named 'misses'", e.message)
  end)

  it("refuse a taken name, unless get_if_exists returns the actor that has it", function()
    local A = cray.actor(Counter)
    local first = A.options{name = "one"}.remote(1)
    assert.matches("an actor named 'one' exists already",
                   support.error_of(A.options{name = "one"}.remote, 2).message)
    local again = A.options{name = "one", get_if_exists = true}.remote(3)
    assert.are.equal(first, again)
    assert.are.equal(2, cray.get(again.incr.remote()))
  end)

  it("refuse what is not a handle", function()
    assert.matches("expects an actor handle", support.error_of(cray.kill, {}).message)
    assert.matches("expects an actor handle", support.error_of(cray.monitor, 1).message)
  end)
end)

describe("actor lifecycle", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  it("runs init before any call", function()
    local Slow = cray.actor({
      init = function(self) cray.sleep(0.1); self.ready = true end,
      ready_now = function(self) return self.ready end,
    })
    assert.is_true(cray.get(Slow.remote().ready_now.remote()))
  end)

  it("kills an actor whose init fails: calls fail with actor_died caused by that error", function()
    local Broken = cray.actor({__name = "Broken", init = function() error("no config", 0) end,
                               get = function() return 1 end})
    local b = Broken.remote()
    local e = support.error_of(cray.get, b.get.remote())
    assert.are.equal("actor_died", e.kind)
    assert.matches("actor Broken died: its init raised an error", e.message)
    assert.are.equal("no config", e.cause.message)
    assert.are.equal("actor_died", support.error_of(cray.get, b.get.remote()).kind)
  end)

  it("fails only the call whose method raised", function()
    local c = cray.actor(Counter).remote(1)
    local e = support.error_of(cray.get, c.fail.remote("oops"))
    assert.are.equal("task_error", e.kind)
    assert.are.equal("oops", e.message)
    assert.matches("Counter.fail", e.task)
    assert.are.equal(2, cray.get(c.incr.remote()))
  end)

  it("fails pending and later calls with actor_died after cray.kill", function()
    local log = cray.actor(Log).remote()
    local busy = log.add.remote("long", 0.3)
    local queued = log.add.remote("queued")
    cray.sleep(0.05)
    assert.is_true(cray.kill(log))
    assert.are.equal("actor_died", support.error_of(cray.get, busy).kind)
    local e = support.error_of(cray.get, queued)
    assert.are.equal("actor_died", e.kind)
    assert.matches("killed with cray.kill", e.message)
    assert.are.equal("actor_died", support.error_of(cray.get, log.add.remote("later")).kind)
    assert.is_false(cray.kill(log)) -- dead already
  end)

  it("ends an actor after the call in which it called cray.exit_actor", function()
    local Quitter = cray.actor({
      quit = function() cray.exit_actor(); return "bye" end,
      hello = function() return "hi" end,
    })
    local q = Quitter.remote()
    local bye, after = q.quit.remote(), q.hello.remote()
    assert.are.equal("bye", cray.get(bye))
    local e = support.error_of(cray.get, after)
    assert.are.equal("actor_died", e.kind)
    assert.matches("called cray.exit_actor", e.message)
  end)

  it("restarts with init's first arguments after kill{no_restart = false}", function()
    local c = cray.actor(Counter, {max_restarts = 1}).remote(100)
    assert.are.equal(101, cray.get(c.incr.remote()))
    cray.kill(c, {no_restart = false})
    assert.are.equal(101, cray.get(c.incr.remote()))
    cray.kill(c, {no_restart = false}) -- no restarts left: it dies
    assert.are.equal("actor_died", support.error_of(cray.get, c.incr.remote()).kind)
  end)

  it("dies on kill{no_restart = false} without max_restarts", function()
    local c = cray.actor(Counter).remote()
    cray.kill(c, {no_restart = false})
    assert.are.equal("actor_died", support.error_of(cray.get, c.get.remote()).kind)
  end)

  it("sends again the calls a restart interrupted while max_task_retries allows", function()
    local Sleepy = {
      init = function(self) self.starts = (self.starts or 0) + 1 end,
      nap = function() cray.sleep(0.3); return "rested" end,
    }
    local keep = cray.actor(Sleepy, {max_restarts = 1, max_task_retries = 1}).remote()
    local drop = cray.actor(Sleepy, {max_restarts = 1}).remote()
    local kept, dropped = keep.nap.remote(), drop.nap.remote()
    cray.sleep(0.1)
    cray.kill(keep, {no_restart = false})
    cray.kill(drop, {no_restart = false})
    assert.are.equal("rested", cray.get(kept))
    local e = support.error_of(cray.get, dropped)
    assert.are.equal("actor_died", e.kind)
    assert.matches("max_task_retries = 0", e.message)
  end)

  it("restarts soundly while its calls sleep, round after round", function()
    -- A restart takes back calls whose sleep timers are still armed; a timer firing after
    -- that must not touch the call, which is queued again or failed.
    local Napper = {__name = "Napper", nap = function(_, s) cray.sleep(s); return "rested" end}
    local a = cray.actor(Napper, {max_restarts = -1, max_concurrency = 4, max_task_retries = 1}).remote()
    local calls, deadline = {}, support.clock() + 3
    for round = 1, 1500 do
      for i = 1, 4 do calls[#calls + 1] = a.nap.remote(0.0005 * i) end
      if round % 2 == 0 then cray.sleep(0.0005 * (round % 7)) end
      cray.kill(a, {no_restart = false})
      if support.clock() > deadline then break end
    end
    local rested = 0
    for _, r in ipairs(calls) do
      local ok, v = pcall(cray.get, r, {timeout = 30})
      if ok then
        assert.are.equal("rested", v)
        rested = rested + 1
      else
        assert.are.equal("actor_died", v.kind)
        assert.matches("restarted while call 'Napper.nap' ran", v.message)
      end
    end
    assert.is_true(rested > 0)
    assert.are.equal("rested", cray.get(a.nap.remote(0), {timeout = 30}))
  end)

  it("restarts after its worker state runs out of memory, or dies without restarts", function()
    cray = support.fresh({workers = 1, worker_memory = "64M", task_memory = "64M"})
    local Hog = {
      init = function(self, tag) self.tag = tag end,
      tag_of = function(self) return self.tag end,
      hog = function()
        local t = {}
        for i = 1, 1e8 do t[i] = {i} end
      end,
    }
    local phoenix = cray.actor(Hog, {max_restarts = 1}).remote("phoenix")
    local mortal = cray.actor(Hog).remote("mortal")
    local watch = cray.monitor(mortal)
    cray.get({phoenix.tag_of.remote(), mortal.tag_of.remote()}) -- both made before the hog
    assert.are.equal("out_of_memory", support.error_of(cray.get, phoenix.hog.remote()).kind)
    assert.are.equal("phoenix", cray.get(phoenix.tag_of.remote()))
    local e = support.error_of(cray.get, mortal.tag_of.remote())
    assert.are.equal("actor_died", e.kind)
    assert.matches("ran out of memory", e.message)
    assert.are.equal("out_of_memory", cray.get(watch, {timeout = 10}).reason)
  end)

  it("collects an unnamed actor with no handles and no pending calls", function()
    local before = alive()
    local c = cray.actor(Counter).remote()
    local watch = cray.monitor(c)
    cray.get(c.incr.remote())
    assert.are.equal(before + 1, alive())
    c = nil
    eventually(function() return alive() == before end, "the actor was collected")
    assert.are.equal("collected", cray.get(watch, {timeout = 5}).reason)
  end)

  it("collects an actor whose handle made many calls, and keeps it while calls are queued", function()
    local before = alive()
    local c = cray.actor(Counter).remote()
    local watch = cray.monitor(c)
    local tell = c.incr.options{num_returns = 0}
    for _ = 1, 999 do tell.remote() end
    local last = c.incr.remote()
    c, tell = nil, nil
    support.collect()
    assert.are.equal(1000, cray.get(last)) -- the calls queued kept it alive
    eventually(function() return alive() == before end, "the actor was collected")
    assert.are.equal("collected", cray.get(watch, {timeout = 5}).reason)
  end)

  it("makes new actors soundly while old ones are collected", function()
    local A = cray.actor({f = function() return "ok" end})
    local before = alive()
    for _ = 1, 20 do
      local hs, refs = {}, {}
      for i = 1, 5000 do hs[i] = A.remote(); refs[i] = hs[i].f.remote() end
      for _, v in ipairs(cray.get(refs)) do assert.are.equal("ok", v) end
      hs, refs = nil, nil
      support.collect()
    end
    eventually(function() return alive() == before end, "every actor was collected")
  end)

  it("keeps a named actor without handles until it is killed", function()
    local before = alive()
    cray.actor(Counter).options{name = "kept"}.remote(5)
    support.collect()
    cray.sleep(0.05)
    assert.are.equal(before + 1, alive())
    assert.are.equal(5, cray.get(cray.get_actor("kept").get.remote()))
    cray.kill(cray.get_actor("kept"))
    eventually(function() return alive() == before end, "the named actor died")
    assert.matches("no actor named 'kept'", support.error_of(cray.get_actor, "kept").message)
  end)
end)

describe("actor monitors", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  it("resolve with reason 'killed' when the actor is killed", function()
    local c = cray.actor(Counter).remote()
    local m = cray.monitor(c)
    cray.get(c.incr.remote())
    assert.are.equal(0, #(cray.wait({m}, {timeout = 0})))
    cray.kill(c)
    local why = cray.get(m, {timeout = 5})
    assert.are.equal("killed", why.reason)
    assert.matches("actor Counter died", why.message)
  end)

  it("resolve with reason 'exited' after cray.exit_actor", function()
    local c = cray.actor({bye = function() cray.exit_actor() end}).remote()
    local m = cray.monitor(c)
    c.bye.remote()
    assert.are.equal("exited", cray.get(m, {timeout = 5}).reason)
  end)

  it("resolve with reason 'init_error' and the error as cause", function()
    local c = cray.actor({init = function() error("bad start", 0) end}).remote()
    local why = cray.get(cray.monitor(c), {timeout = 5})
    assert.are.equal("init_error", why.reason)
    assert.are.equal("bad start", why.cause.message)
  end)

  it("resolve at once for an actor that is dead already", function()
    local c = cray.actor(Counter).remote()
    cray.kill(c)
    cray.get(cray.monitor(c), {timeout = 5})
    assert.are.equal("killed", cray.get(cray.monitor(c), {timeout = 0.5}).reason)
  end)
end)

describe("deadlock reports", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  local Peer = {
    __name = "Peer",
    set_peer = function(self, peer) self.peer = peer end,
    ping = function(self) return cray.get(self.peer.ping.remote()) end,
    hello = function() return "hello" end,
  }

  it("raise kind deadlock with the wait-for chain instead of hanging", function()
    local P = cray.actor(Peer)
    local a, b = P.options{name = "a"}.remote(), P.options{name = "b"}.remote()
    cray.get({a.set_peer.remote(b), b.set_peer.remote(a)})
    local e = support.error_of(cray.get, a.ping.remote())
    assert.are.equal("deadlock", e.kind)
    assert.matches("the driver waits for the result of 'Peer.ping' of actor 'a'", e.message, 1, true)
    assert.matches("'Peer.ping' of actor 'a' waits in cray.get or cray.wait for the result of "
                   .. "'Peer.ping' of actor 'b'", e.message, 1, true)
    assert.matches("'Peer.ping' of actor 'a' waits in its actor's mailbox behind 'Peer.ping' of "
                   .. "actor 'a', which holds the actor's slot", e.message, 1, true)
    assert.matches("is where the cycle began", e.message)
  end)

  it("raise deadlock from cray.wait too, and leave the runtime usable", function()
    local P = cray.actor(Peer)
    local a, b = P.remote(), P.remote()
    cray.get({a.set_peer.remote(b), b.set_peer.remote(a)})
    local stuck = a.ping.remote()
    assert.are.equal("deadlock", support.error_of(cray.wait, {stuck}).kind)
    cray.kill(a)
    assert.are.equal("actor_died", support.error_of(cray.get, stuck).kind)
    assert.are.equal("hello", cray.get(P.remote().hello.remote()))
  end)

  it("name an object that nothing will produce", function()
    local c = cray.actor(Counter).remote()
    local e = support.error_of(cray.get, cray.monitor(c))
    assert.are.equal("deadlock", e.kind)
    assert.matches("the driver waits for an object that nothing will produce", e.message)
  end)

  it("are not raised for a wait with a timeout, which times out", function()
    local c = cray.actor(Counter).remote()
    assert.are.equal("timeout", support.error_of(cray.get, cray.monitor(c), {timeout = 0.5}).kind)
  end)

  it("are not raised while a task sleeps or a timer is pending", function()
    local nap = cray.remote(function() cray.sleep(0.5); return "rested" end)
    assert.are.equal("rested", cray.get(nap.remote()))
  end)
end)

describe("actor resources", function()
  it("are held from init until the actor dies, and later actors wait for them", function()
    cray = support.fresh({workers = 2, resources = {gpu = 1}})
    local Gpu = cray.actor(Counter, {resources = {gpu = 1}})
    local first = Gpu.remote(1)
    assert.are.equal(1, cray.get(first.get.remote()))
    local second = Gpu.remote(2)
    local r = second.get.remote()
    assert.are.equal(0, #(cray.wait({r}, {timeout = 0.2})))
    cray.kill(first)
    assert.are.equal(2, cray.get(r, {timeout = 5}))
  end)

  it("are refused at creation when the runtime lacks them", function()
    cray = support.fresh({workers = 2, resources = {gpu = 1}})
    local e = support.error_of(cray.actor(Counter, {resources = {gpu = 2}}).remote)
    assert.are.equal("invalid_argument", e.kind)
    assert.matches("needs 2 of resource 'gpu', but the runtime has only 1", e.message)
    assert.matches("which this runtime does not have",
                   support.error_of(cray.actor(Counter, {resources = {tpu = 1}}).remote).message)
  end)
end)

-- An actor whose class has no init, made with no arguments nor resources, has no init
-- call: its first call makes its instance (docs/architecture.md, "Actors").
describe("actors without an init call", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  local Bag = {
    __name = "Bag",
    put = function(self, k, v) self[k] = v end,
    take = function(self, k) return self[k] end,
    class = function(self) return getmetatable(self).__name end,
  }

  it("run no init, and their first call makes the instance their calls share", function()
    local b = cray.actor(Bag).remote()
    cray.get(b.put.remote("x", 7))
    assert.are.same({7, "Bag"}, cray.get({b.take.remote("x"), b.class.remote()}))
    assert.is_nil(cray.stats().functions["Bag.init"])
    assert.are.equal(1, cray.stats().functions["Bag.put"].calls)
  end)

  it("run the init of a class given one after cray.actor, before it was stored", function()
    local cls = {__name = "LateInit", get = function(self) return self.n end}
    local A = cray.actor(cls)
    cls.init = function(self) self.n = 5 end
    assert.are.equal(5, cray.get(A.remote().get.remote()))
    assert.are.equal(1, cray.stats().functions["LateInit.init"].calls)
  end)

  it("run a no-op init when made with arguments or resources, or their class has a metatable",
     function()
    cray = support.fresh({workers = 2, resources = {gpu = 1}})
    local Plain = cray.actor{__name = "NoInitArgs", get = function(self) return self.n end}
    assert.is_nil(cray.get(Plain.remote(1).get.remote()))
    assert.is_nil(cray.get(Plain.options{resources = {gpu = 1}}.remote().get.remote()))
    local mt = cray.register_class("spec.NoInitMeta", {})
    local Meta = cray.actor(setmetatable({__name = "NoInitMeta", get = function() return 1 end}, mt))
    assert.are.equal(1, cray.get(Meta.remote().get.remote()))
    local f = cray.stats().functions
    assert.are.same({2, 1}, {f["NoInitArgs.init"].calls, f["NoInitMeta.init"].calls})
  end)

  it("serve calls at once with max_concurrency > 1, on one instance", function()
    local Slow = cray.actor{add = function(self, k) cray.sleep(0.05); self.n = (self.n or 0) + k end,
                            get = function(self) return self.n end}
    local s = Slow.options{max_concurrency = 4}.remote()
    local refs = {}
    for k = 1, 4 do refs[k] = s.add.remote(k) end
    cray.get(refs)
    assert.are.equal(10, cray.get(s.get.remote()))
  end)

  it("restart with a fresh instance, are killed and collected, and are monitored", function()
    local before = alive()
    local b = cray.actor(Bag, {max_restarts = 1}).remote()
    cray.get(b.put.remote("x", 1))
    cray.kill(b, {no_restart = false})
    assert.is_nil(cray.get(b.take.remote("x")))
    local watch = cray.monitor(b)
    cray.kill(b)
    assert.are.equal("killed", cray.get(watch, {timeout = 5}).reason)
    local idle = cray.actor(Bag).remote() -- never called
    local gone = cray.monitor(idle)
    assert.are.equal(before + 1, alive())
    idle, b = nil, nil
    eventually(function() return alive() == before end, "the idle actor was collected")
    assert.are.equal("collected", cray.get(gone, {timeout = 5}).reason)
  end)

  it("are found by name with cray.get_actor", function()
    local b = cray.actor(Bag, {name = "bag"}).remote()
    cray.get(b.put.remote("y", 3))
    assert.are.equal(3, cray.get(cray.get_actor("bag").take.remote("y")))
    cray.kill(b)
  end)
end)
