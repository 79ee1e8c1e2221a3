local support = require "spec.support"
local cray = support.fresh({workers = 2})

-- A counter that raises on "boom" and counts its inits in a global of its worker state.
local function Counter()
  return cray.actor{
    init = function(self) self.n = 0 end,
    incr = function(self) self.n = self.n + 1; return self.n end,
    boom = function() error("boom") end,
  }
end

describe("restart_on_error", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  it("restarts an actor whose method raised: the call fails, the state starts anew", function()
    local c = Counter().options{restart_on_error = true, max_restarts = 2}.remote()
    assert.are.same({1, 2}, {cray.get(c.incr.remote()), cray.get(c.incr.remote())})
    local e = support.error_of(cray.get, c.boom.remote())
    assert.are.equal("task_error", e.kind)
    assert.matches("boom", e.message)
    assert.are.equal(1, cray.get(c.incr.remote()))
  end)

  it("lets the actor die with reason error once its restarts are used up", function()
    local c = Counter().options{restart_on_error = true, max_restarts = 1}.remote()
    local m = cray.monitor(c)
    support.error_of(cray.get, c.boom.remote())
    assert.are.equal(1, cray.get(c.incr.remote()))
    support.error_of(cray.get, c.boom.remote())
    local info = cray.get(m)
    assert.are.equal("error", info.reason)
    assert.matches("a method raised an error", info.message)
    assert.matches("boom", info.cause.message)
    assert.are.equal("actor_died", support.error_of(cray.get, c.incr.remote()).kind)
  end)

  it("keeps the state of an actor without it when a method raises", function()
    local c = Counter().options{max_restarts = 3}.remote()
    cray.get(c.incr.remote())
    support.error_of(cray.get, c.boom.remote())
    assert.are.equal(2, cray.get(c.incr.remote()))
  end)

  it("refuses a value that is not a boolean", function()
    assert.matches("option 'restart_on_error' must be a boolean %(got 1%)",
                   support.error_of(cray.actor, {}, {restart_on_error = 1}).message)
  end)
end)

describe("cray.monitor with restarts", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  it("resolves at the next restart with the count and the cause", function()
    local c = Counter().options{restart_on_error = true, max_restarts = 5}.remote()
    local m = cray.monitor(c, {restarts = true})
    local plain = cray.monitor(c)
    support.error_of(cray.get, c.boom.remote())
    local info = cray.get(m)
    assert.are.equal("restarted", info.reason)
    assert.are.equal(1, info.restarts)
    assert.matches("restarted %(1 so far%): a method raised an error", info.message)
    assert.matches("boom", info.cause.message)
    assert.are.same({}, (cray.wait({plain}, {timeout = 0})))
  end)

  it("reports a restart by cray.kill, and death when no restarts are left", function()
    local c = Counter().options{max_restarts = 1}.remote()
    local m = cray.monitor(c, {restarts = true})
    cray.kill(c, {no_restart = false})
    local info = cray.get(m)
    assert.are.equal("restarted", info.reason)
    assert.matches("it was killed with cray.kill", info.message)
    m = cray.monitor(c, {restarts = true})
    cray.kill(c, {no_restart = false})
    assert.are.equal("killed", cray.get(m).reason)
  end)

  it("refuses unknown options", function()
    local c = Counter().remote()
    assert.matches("cray.monitor: unknown option 'restart' %(known: restarts%)",
                   support.error_of(cray.monitor, c, {restart = true}).message)
  end)
end)

describe("cray.link", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  it("kills the other actor when one dies", function()
    local A = Counter()
    local a, b = A.remote(), A.remote()
    local watch = cray.link(a, b)
    local mb = cray.monitor(b)
    cray.kill(a)
    assert.are.equal("killed", cray.get(watch))
    assert.are.equal("killed", cray.get(mb).reason)
  end)

  it("works both ways", function()
    local A = Counter()
    local a, b = A.remote(), A.remote()
    local watch = cray.link(a, b)
    cray.kill(b)
    assert.are.equal("killed", cray.get(watch))
    assert.are.equal("killed", cray.get(cray.monitor(a)).reason)
  end)

  it("calls on_exit instead on an actor that traps exits", function()
    local A = Counter()
    local Trapper = cray.actor{
      init = function(self) self.seen = {} end,
      on_exit = function(self, h, info) self.seen[#self.seen + 1] = info.reason end,
      seen_reasons = function(self) return self.seen end,
    }
    local a, t = A.remote(), Trapper.remote()
    local watch = cray.link(a, t)
    cray.kill(a)
    assert.are.equal("trapped", cray.get(watch))
    assert.are.same({"killed"}, cray.get(t.seen_reasons.remote()))
  end)

  it("leaves the other alive when one exits normally", function()
    local A = cray.actor{
      quit = function() cray.exit_actor() end,
      ping = function() return "pong" end,
    }
    local a, b = A.remote(), A.remote()
    local watch = cray.link(a, b)
    cray.get(a.quit.remote())
    assert.are.equal("exited", cray.get(watch))
    assert.are.equal("pong", cray.get(b.ping.remote()))
  end)

  it("refuses what is not two different actor handles", function()
    local a = Counter().remote()
    assert.matches("cray.link: expects an actor handle %(got 1%)",
                   support.error_of(cray.link, a, 1).message)
    assert.matches("cray.link: an actor cannot be linked to itself",
                   support.error_of(cray.link, a, a).message)
  end)
end)
