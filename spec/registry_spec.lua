local support = require "spec.support"
local cray = support.fresh({workers = 2})

describe("the actor registry", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  local A = function() return cray.actor{ping = function() return "pong" end} end

  it("lists the names of living named actors, sorted", function()
    local cls = A()
    assert.are.same({}, cray.list_actors())
    local b = cls.options{name = "b"}.remote()
    cls.options{name = "a"}.remote()
    cls.remote()
    assert.are.same({"a", "b"}, cray.list_actors())
    cray.kill(b)
    cray.get(cray.monitor(b))
    assert.are.same({"a"}, cray.list_actors())
  end)

  it("lists them inside a task too", function()
    A().options{name = "x"}.remote()
    local f = cray.remote(function() return cray.list_actors() end)
    assert.are.same({"x"}, cray.get(f.remote()))
  end)

  it("gets a missing actor as nil with missing_ok", function()
    assert.is_nil(cray.get_actor("nobody", {missing_ok = true}))
    local h = A().options{name = "somebody"}.remote()
    assert.are.equal(h, cray.get_actor("somebody", {missing_ok = true}))
    assert.are.equal("pong", cray.get(cray.get_actor("somebody", {missing_ok = true}).ping.remote()))
  end)

  it("raises for a missing actor without missing_ok, and refuses bad options", function()
    local e = support.error_of(cray.get_actor, "nobody")
    assert.are.equal("invalid_argument", e.kind)
    assert.matches("cray.get_actor: no actor named 'nobody'", e.message)
    assert.matches("cray.get_actor: option 'missing_ok' must be a boolean %(got 1%)",
                   support.error_of(cray.get_actor, "x", {missing_ok = 1}).message)
    assert.matches("cray.get_actor: unknown option 'namespace' %(known: missing_ok%)",
                   support.error_of(cray.get_actor, "x", {namespace = "n"}).message)
  end)
end)
