local support = require "spec.support"
local cray = support.fresh({workers = 2})

-- An actor whose wait(i) returns once open(i) was called: refs that finish when the spec
-- says so.
local function latch()
  local Latch = cray.actor{
    init = function(self) self.opened = {} end,
    open = function(self, i) self.opened[i] = true end,
    wait = function(self, i)
      while not self.opened[i] do cray.sleep(0.002) end
      return i
    end,
  }
  return Latch.options{max_concurrency = 100}.remote()
end

describe("cray.as_completed", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  it("gives each ref in the order they finish", function()
    local l = latch()
    local refs = {l.wait.remote(1), l.wait.remote(2), l.wait.remote(3)}
    local next_ref = cray.as_completed(refs)
    l.open.remote(3)
    assert.are.equal(refs[3], next_ref())
    l.open.remote(1)
    assert.are.equal(refs[1], next_ref())
    l.open.remote(2)
    assert.are.equal(refs[2], next_ref())
    assert.is_nil(next_ref())
  end)

  it("gives every ref once when all have finished, in the order given", function()
    local refs = {cray.put("a"), cray.put("b"), cray.put("c")}
    local got = {}
    for ref in cray.as_completed(refs) do got[#got + 1] = cray.get(ref) end
    assert.are.same({"a", "b", "c"}, got)
  end)

  it("ends at once for no refs", function()
    assert.is_nil(cray.as_completed({})())
  end)

  it("raises a timeout error when refs are left at the deadline", function()
    local l = latch()
    local refs = {l.wait.remote(1), cray.put("ready")}
    local next_ref = cray.as_completed(refs, {timeout = 0.05})
    assert.are.equal(refs[2], next_ref())
    local e = support.error_of(next_ref)
    assert.are.equal("timeout", e.kind)
    assert.matches("cray.as_completed: timed out after 0.05 s; 1 of 2 refs not ready", e.message)
    l.open.remote(1)
  end)

  it("waits without blocking its worker inside a task", function()
    local f = cray.remote(function(x) cray.sleep(0.01 * x); return x end)
    local sum = cray.remote(function(refs)
      local total, count = 0, 0
      for ref in cray.as_completed(refs) do
        total, count = total + cray.get(ref), count + 1
      end
      return total, count
    end)
    local refs = {}
    for i = 1, 6 do refs[i] = f.remote(i) end
    assert.are.same({21, 6}, {cray.get(sum.options{}.remote(refs))})
  end)

  it("refuses what is not an array of refs, and bad options", function()
    assert.matches([[cray.as_completed: expects an array of ObjectRefs %(got "x"%)]],
                   support.error_of(cray.as_completed, "x").message)
    assert.matches([[cray.as_completed: expects an array of ObjectRefs %(got a table with key "a"%)]],
                   support.error_of(cray.as_completed, {a = cray.put(1)}).message)
    assert.matches("cray.as_completed: refs%[2%] is not an ObjectRef %(got 5%)",
                   support.error_of(cray.as_completed, {cray.put(1), 5}).message)
    local e = support.error_of(cray.as_completed, {}, {timeout = -1})
    assert.are.equal("invalid_argument", e.kind)
    assert.matches("option 'timeout' must be a number of seconds >= 0 %(got %-1%)", e.message)
    assert.matches("unknown option 'num_returns' %(known: timeout%)",
                   support.error_of(cray.as_completed, {}, {num_returns = 1}).message)
  end)
end)
