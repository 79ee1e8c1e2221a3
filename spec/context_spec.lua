local support = require "spec.support"
local cray = support.fresh({workers = 2})

describe("cray.context", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  it("in the driver, names node 0 and no task, actor or worker", function()
    assert.are.same({node = 0}, cray.context())
  end)

  it("in a task, gives the task's id, name and worker", function()
    local f = cray.remote(function() return cray.context() end, {name = "ctx"})
    local ref = f.remote()
    local c = cray.get(ref)
    assert.are.equal("ctx", c.name)
    assert.are.equal(0, c.node)
    assert.is_nil(c.actor)
    assert.is_true(c.worker == 0 or c.worker == 1)
    assert.matches("^%x+$", c.task)
    assert.are.equal(32, #c.task)
    -- the task's id is its returns' id with index 0
    assert.are.equal(ref:hex():sub(1, 24), c.task:sub(1, 24))
  end)

  it("in an actor's method, gives the actor's handle", function()
    local A = cray.actor{who = function() return cray.context() end}
    local a = A.remote()
    local c = cray.get(a.who.remote())
    assert.are.equal(a, c.actor)
    assert.matches("%.who$", c.name)
  end)
end)

-- cray.available_resources() once it satisfies done (a task gives its resources back just
-- after its result is stored), or as it is when support.poll gives up.
local function available_when(done)
  local seen
  support.poll(function()
    seen = cray.available_resources()
    return done(seen)
  end)
  return seen
end

describe("resources", function()
  before_each(function() cray = support.fresh({workers = 3, resources = {db = 2}}) end)

  it("count the workers as CPU, and the custom ones", function()
    assert.are.same({CPU = 3, db = 2}, cray.cluster_resources())
  end)

  it("are all available before anything ran", function()
    assert.are.same({CPU = 3, db = 2}, cray.available_resources())
  end)

  it("leave CPU as cray.init gives it", function()
    cray = support.fresh({workers = 2, resources = {CPU = 8}})
    assert.are.same({CPU = 8}, cray.cluster_resources())
  end)

  it("are available less what running tasks hold", function()
    local gate = cray.actor{
      init = function(self) self.open = false end,
      open_it = function(self) self.open = true end,
      is_open = function(self) return self.open end,
    }.remote()
    local f = cray.remote(function(g)
      while not cray.get(g.is_open.remote()) do cray.sleep(0.002) end
      return true
    end)
    local ref = f.options{resources = {db = 1}, num_cpus = 2}.remote(gate)
    assert.are.same({CPU = 1, db = 1}, available_when(function(r) return r.db == 1 end))
    gate.open_it.remote()
    assert.is_true(cray.get(ref))
    assert.are.same({CPU = 3, db = 2}, available_when(function(r) return r.db == 2 end))
  end)

  it("num_cpus bounds tasks as resources.CPU does", function()
    local f = cray.remote(function() return cray.context().name end, {num_cpus = 3, name = "big"})
    assert.are.equal("big", cray.get(f.remote()))
    local e = support.error_of(function() return f.options{num_cpus = 4}.remote() end)
    assert.are.equal("invalid_argument", e.kind)
    assert.matches("needs 4 of resource 'CPU', but the runtime has only 3", e.message)
  end)

  it("refuse num_cpus that is not a number >= 0, or that disagrees with resources.CPU", function()
    local f = cray.remote(function() end)
    assert.matches("f.options: option 'num_cpus' must be a number >= 0 %(got %-1%)",
                   support.error_of(f.options, {num_cpus = -1}).message)
    assert.matches("cray.remote: num_cpus = 1 and resources.CPU = 2 disagree",
                   support.error_of(cray.remote, function() end,
                                    {num_cpus = 1, resources = {CPU = 2}}).message)
    assert.matches("cray.actor: option 'num_cpus' must be a number >= 0 %(got \"x\"%)",
                   support.error_of(cray.actor, {}, {num_cpus = "x"}).message)
  end)

  it("held by an actor are given back when it dies", function()
    local A = cray.actor{ping = function() return "pong" end}
    local a = A.options{num_cpus = 1}.remote()
    assert.are.equal("pong", cray.get(a.ping.remote()))
    assert.are.equal(2, cray.available_resources().CPU)
    cray.kill(a)
    cray.get(cray.monitor(a))
    assert.are.equal(3, available_when(function(r) return r.CPU == 3 end).CPU)
  end)
end)

describe("resources of an actor", function()
  before_each(function() cray = support.fresh({workers = 2, resources = {db = 1}}) end)

  local A = function()
    return cray.actor{
      init = function(self, seconds) if seconds then cray.sleep(seconds) end end,
      ping = function() return "pong" end,
    }
  end
  local function db_when(n)
    return available_when(function(r) return r.db == n end).db
  end
  local function killed(h)
    local down = cray.monitor(h)
    cray.kill(h)
    return cray.get(down, {timeout = 30}).reason
  end
  -- Its calls wait behind its init, which waits for the resources (given time to start).
  local function waits(h)
    return support.error_of(cray.get, h.ping.remote(), {timeout = 0.2}).kind == "timeout"
  end
  -- An actor of class C that holds db, and one (with opts) whose init waits for it.
  local function holder_and_queued(C, opts)
    local holder = C.options{resources = {db = 1}}.remote()
    assert.are.equal("pong", cray.get(holder.ping.remote()))
    opts.resources = {db = 1}
    local queued = C.options(opts).remote()
    assert.is_true(waits(queued))
    return holder, queued
  end
  -- Restarts a and waits until it has.
  local function restart(a)
    local restarted = cray.monitor(a, {restarts = true})
    cray.kill(a, {no_restart = false})
    return cray.get(restarted, {timeout = 30}).reason
  end

  it("whose init waits for them leave the queue when it is killed", function()
    local C = A()
    local holder, queued = holder_and_queued(C, {})
    local next_one = C.options{resources = {db = 1}}.remote()
    assert.are.equal("killed", killed(queued))
    assert.are.equal("killed", killed(holder))
    assert.are.equal("pong", cray.get(next_one.ping.remote(), {timeout = 30}))
    assert.are.equal(0, db_when(0))
    assert.are.equal("killed", killed(next_one))
    assert.are.equal(1, db_when(1))
  end)

  it("are given back when it is killed while its init waits holding them", function()
    local a = A().options{resources = {db = 1}}.remote(1000)
    assert.are.equal(0, db_when(0))
    assert.are.equal("killed", killed(a))
    assert.are.equal(1, db_when(1))
  end)

  it("are kept across a restart after init, and given back when it dies", function()
    local a = A().options{resources = {db = 1}, max_restarts = 1}.remote()
    assert.are.equal("pong", cray.get(a.ping.remote()))
    assert.are.equal("restarted", restart(a))
    assert.are.equal("pong", cray.get(a.ping.remote(), {timeout = 30}))
    assert.are.equal(0, cray.available_resources().db)
    assert.are.equal("killed", killed(a))
    assert.are.equal(1, db_when(1))
  end)

  it("held by an init that a restart interrupts are given back and taken again", function()
    local a = A().options{resources = {db = 1}, max_restarts = 1}.remote(1000)
    assert.are.equal(0, db_when(0))
    assert.are.equal("restarted", restart(a))
    assert.are.equal(0, db_when(0)) -- the new init asks again once the restart is reported
    assert.are.equal("killed", killed(a))
    assert.are.equal(1, db_when(1))
  end)

  it("are waited for again by an init that a restart takes out of the queue", function()
    local holder, a = holder_and_queued(A(), {max_restarts = 1})
    assert.are.equal("restarted", restart(a))
    assert.are.equal("killed", killed(holder))
    assert.are.equal("pong", cray.get(a.ping.remote(), {timeout = 30}))
    assert.are.equal(0, db_when(0))
    assert.are.equal("killed", killed(a))
    assert.are.equal(1, db_when(1))
  end)
end)

describe("cray.nodes", function()
  it("lists this process as node 0 with its workers, resources and host", function()
    cray = support.fresh({workers = 2, resources = {db = 1}})
    local nodes = cray.nodes()
    assert.are.equal(1, #nodes)
    assert.are.equal(0, nodes[1].node)
    assert.are.equal(2, nodes[1].workers)
    assert.are.same({CPU = 2, db = 1}, nodes[1].resources)
    local p = io.popen("hostname")
    local host = p:read("*l")
    p:close()
    assert.are.equal(host, nodes[1].host)
  end)
end)
