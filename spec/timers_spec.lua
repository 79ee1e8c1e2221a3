local support = require "spec.support"
local cray = support.fresh({workers = 2})

local Log = {
  init = function(self) self.seen = {} end,
  add = function(self, x) self.seen[#self.seen + 1] = x end,
  seen_all = function(self) return self.seen end,
}

describe("cray.after", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  it("calls the method once, later, with the arguments", function()
    local log = cray.actor(Log).remote()
    cray.after(0.05, log.add, "hello")
    support.eventually(cray, function() return #cray.get(log.seen_all.remote()) == 1 end, "the call")
    assert.are.same({"hello"}, cray.get(log.seen_all.remote()))
  end)

  it("calls a remote function too, and works inside tasks", function()
    local log = cray.actor(Log).remote()
    cray.get(cray.remote(function(l) cray.after(0, l.add, "from a task") end).remote(log))
    support.eventually(cray, function() return #cray.get(log.seen_all.remote()) == 1 end, "the call")
    local r = cray.after(0, cray.remote(function() return 1 end))
    assert.is_not_nil(r)
  end)

  it("never calls once cancelled, with :cancel() or cray.cancel", function()
    local log = cray.actor(Log).remote()
    local t1 = cray.after(0.2, log.add, 1)
    local t2 = cray.after(0.2, log.add, 2)
    assert.is_true(t1:cancel())
    assert.is_true(cray.cancel(t2))
    cray.sleep(0.4)
    assert.are.same({}, cray.get(log.seen_all.remote()))
  end)

  it("rejects bad arguments", function()
    assert.matches("cray.after: seconds must be a number >= 0",
                   support.error_of(cray.after, -1, function() end).message)
    assert.matches("expects an actor method %(h.method%) or a remote function",
                   support.error_of(cray.after, 1, function() end).message)
  end)
end)

describe("cray.every", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  it("calls again and again until cancelled, then never more", function()
    local log = cray.actor(Log).remote()
    local t = cray.every(0.01, log.add, "tick")
    support.eventually(cray, function() return #cray.get(log.seen_all.remote()) >= 3 end, "three ticks")
    assert.is_true(t:cancel())
    cray.sleep(0.05)
    local n = #cray.get(log.seen_all.remote())
    cray.sleep(0.1)
    assert.are.equal(n, #cray.get(log.seen_all.remote()))
    assert.are.equal("tick", cray.get(log.seen_all.remote())[1])
  end)

  it("rejects a period of 0", function()
    local log = cray.actor(Log).remote()
    assert.matches("cray.every: seconds must be > 0",
                   support.error_of(cray.every, 0, log.add).message)
  end)
end)
