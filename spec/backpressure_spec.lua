local support = require "spec.support"
local cray = support.fresh({workers = 2})

describe("max_pending_calls", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  local Gate = function()
    return cray.actor{
      init = function(self) self.open = false end,
      wait = function(self)
        while not self.open do cray.sleep(0.002) end
        return "passed"
      end,
      open_it = function(self) self.open = true end,
    }
  end

  it("refuses a call past the bound at once with pending_calls_exceeded", function()
    local g = Gate().options{max_pending_calls = 2, max_concurrency = 4}.remote()
    g.wait.remote()
    g.wait.remote()
    local e = support.error_of(function() return g.wait.remote() end)
    assert.are.equal("pending_calls_exceeded", e.kind)
    assert.matches("has 2 calls pending %(max_pending_calls = 2%)", e.message)
    assert.matches("%.wait' was not sent", e.message)
    -- any method: the bound is the actor's
    assert.are.equal("pending_calls_exceeded",
                     support.error_of(function() return g.open_it.remote() end).kind)
  end)

  it("counts a call until it has finished, then takes new ones", function()
    local A = cray.actor{echo = function(_, x) return x end}
    local h = A.options{max_pending_calls = 1}.remote()
    for i = 1, 20 do
      local ref = support.poll(function()
        local ok, r = pcall(h.echo.remote, i)
        return ok and r
      end)
      assert.are.equal(i, cray.get(ref))
    end
  end)

  it("does not bound an actor without it, nor with -1", function()
    local A = cray.actor{echo = function(_, x) return x end}
    local h = A.options{max_pending_calls = -1}.remote()
    local refs = {}
    for i = 1, 300 do refs[i] = h.echo.remote(i) end
    assert.are.equal(300, cray.get(refs)[300])
  end)

  it("refuses a bound that is not a whole number >= 1 or -1", function()
    local A = cray.actor{}
    assert.matches("option 'max_pending_calls' must be a whole number >= 1, or %-1 for no limit "
                   .. "%(got 0%)", support.error_of(A.options, {max_pending_calls = 0}).message)
    assert.matches("option 'max_pending_calls' must be a whole number >= 1",
                   support.error_of(cray.actor, {}, {max_pending_calls = 1.5}).message)
  end)
end)
