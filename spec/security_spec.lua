-- The promises of docs/security.md that no other spec checks: what cray leaves on disk,
-- and who may read it.
local support = require "spec.support"

describe("security", function()
  it("spills into a directory only the process's user can enter, and leaves nothing", function()
    local tmp = os.tmpname()
    os.remove(tmp)
    assert.are.equal(0, (os.execute("mkdir " .. tmp)))
    local status, out, err = support.crayrun("-m 1M -", [[
      local refs = {}
      for i = 1, 8 do refs[i] = cray.put(("x"):rep(1000000)) end
      assert(cray.stats().store.spilled_objects > 0, "nothing spilled")
      local p = io.popen("find " .. os.getenv("TMPDIR") .. " -mindepth 1 -printf '%m %y %p\n'")
      io.write(p:read("*a"))
      p:close()
    ]], {TMPDIR = tmp})
    assert.are.equal(0, status, err)
    local dirs, files = 0, 0
    for mode, kind, name in out:gmatch("(%d+) (%a) ([^\n]+)") do
      assert.matches("^%d00$", mode, name) -- no access for group or others
      if kind == "d" then dirs = dirs + 1 else files = files + 1 end
    end
    assert.is_true(dirs >= 1 and files >= 1, out)
    local p = io.popen("find " .. tmp .. " -mindepth 1")
    assert.are.equal("", p:read("*a"))
    p:close()
    os.execute("rmdir " .. tmp)
  end)
end)
