local support = require "spec.support"
local cray = support.fresh({workers = 2})
local util = require "cray.util"

local function Child()
  return cray.actor{
    init = function(self, tag) self.tag = tag end,
    tag_of = function(self) return self.tag end,
  }
end

-- Waits until sup has restarted children `n` times in all.
local function restarted(sup, n)
  return support.poll(function() return sup:restart_count() >= n end)
end

local function killed(h)
  local down = cray.monitor(h)
  cray.kill(h)
  return cray.get(down).reason
end

describe("util.Supervisor", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  it("starts its children in order, with their args, under their names", function()
    local C = Child()
    local sup = util.Supervisor{children = {{name = "a", class = C, args = {"A"}},
                                            {name = "b", class = C, args = {"B"}}}}
    assert.are.equal("A", cray.get(sup:child("a").tag_of.remote()))
    assert.are.equal("B", cray.get(sup:child(2).tag_of.remote()))
    assert.are.equal(sup:child("a"), cray.get_actor("a"))
    assert.are.equal(2, #sup:children())
    sup:stop()
  end)

  it("one_for_one starts a child that died again, alone", function()
    local C = Child()
    local sup = util.Supervisor{children = {{name = "a", class = C, args = {1}},
                                            {name = "b", class = C, args = {2}}}}
    local a, b = sup:child("a"), sup:child("b")
    assert.are.equal("killed", killed(a))
    assert.is_true(restarted(sup, 1))
    local a2 = sup:child("a")
    assert.are_not.equal(a, a2)
    assert.are.equal(1, cray.get(a2.tag_of.remote()))
    assert.are.equal(b, sup:child("b"))
    assert.are.equal(a2, cray.get_actor("a"))
    sup:stop()
  end)

  it("one_for_all kills the others and starts them all again", function()
    local C = Child()
    local sup = util.Supervisor{strategy = "one_for_all",
                                children = {{name = "x", class = C, args = {1}},
                                            {name = "y", class = C, args = {2}}}}
    local a, b = sup:child(1), sup:child(2)
    local b_down = cray.monitor(b)
    killed(a)
    assert.are.equal("killed", cray.get(b_down).reason)
    assert.is_true(restarted(sup, 1))
    local kids = sup:children()
    assert.are_not.equal(a, kids[1])
    assert.are_not.equal(b, kids[2])
    assert.are.same({1, 2}, {cray.get(kids[1].tag_of.remote()), cray.get(kids[2].tag_of.remote())})
    assert.are.same(kids, {cray.get_actor("x"), cray.get_actor("y")})
    sup:stop()
  end)

  it("gives up past max_restarts within the period: kills its children and exits", function()
    local C = Child()
    local sup = util.Supervisor{max_restarts = 1, period = 60,
                                children = {{class = C}, {class = C}}}
    local ended = sup:monitor()
    local other = sup:child(2)
    killed(sup:child(1))
    assert.is_true(restarted(sup, 1))
    local other_down = cray.monitor(other)
    killed(sup:child(1))
    assert.are.equal("exited", cray.get(ended).reason)
    assert.are.equal("killed", cray.get(other_down).reason)
  end)

  it("stops: its children die and it ends", function()
    local C = Child()
    local sup = util.Supervisor{children = {{class = C}}}
    local child_down = cray.monitor(sup:child(1))
    sup:stop()
    assert.are.equal("killed", cray.get(child_down).reason)
    assert.are.equal("exited", cray.get(sup:monitor()).reason)
  end)

  it("refuses bad strategies, limits and child specs", function()
    local C = Child()
    assert.matches("util.Supervisor: option 'children' is required",
                   support.error_of(util.Supervisor, {}).message)
    assert.matches("option 'strategy' must be \"one_for_one\" or \"one_for_all\" %(got \"rest\"%)",
                   support.error_of(util.Supervisor, {strategy = "rest",
                                                      children = {{class = C}}}).message)
    assert.matches("option 'period' must be a number of seconds > 0 %(got 0%)",
                   support.error_of(util.Supervisor, {period = 0, children = {{class = C}}}).message)
    assert.matches("option 'children' must be a non%-empty array of child specs",
                   support.error_of(util.Supervisor, {children = {}}).message)
    assert.matches("children%[1%]: class must be an actor class %(from cray.actor%)",
                   support.error_of(util.Supervisor, {children = {{class = {}}}}).message)
    assert.matches("children%[1%]: unknown field 'args2' %(known: args, class, name, options%)",
                   support.error_of(util.Supervisor, {children = {{class = C, args2 = 1}}}).message)
    assert.matches("children%[2%] must be a table",
                   support.error_of(util.Supervisor, {children = {{class = C}, 5}}).message)
  end)
end)
