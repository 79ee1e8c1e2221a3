local support = require "spec.support"

-- Runs crayrun under a pseudo-terminal 200 columns wide (script(1)): what it wrote there.
local function on_terminal(args, cols)
  local cmd = ("stty cols %d; %s/crayrun %s"):format(cols or 200, support.build, args)
  return support.run(("script -qec %q /dev/null"):format(cmd))
end

local slow = "-w 2 -e 'local f = cray.remote(function() cray.sleep(0.5) end) " ..
             "local r = {} for i = 1, 6 do r[i] = f.remote() end cray.get(r)'"

describe("the progress line", function()
  it("is drawn on a terminal with tasks, actors, store and time, then erased", function()
    local status, out = on_terminal(slow)
    assert.are.equal(0, status)
    assert.matches("\rcray: %d+/%d+ tasks done, %d+ running, %d+ failed, %d+ actors, " ..
                   "store [%d.]+ MiB, spilled [%d.]+ MiB, [%d.]+s\27%[K", out)
    assert.is_truthy(out:find("\r\27[K", 1, true), "erased at exit")
    assert.matches("\r\27%[K$", out:gsub("\r?\n$", ""))
  end)

  it("is cut to the terminal's width", function()
    local status, out = on_terminal(slow, 30)
    assert.are.equal(0, status)
    local line = out:match("\r(cray: [^\27]*)\27%[K")
    assert.is_truthy(line, out)
    assert.are.equal(29, #line) -- one column short, so the cursor never wraps
  end)

  it("is not drawn with --no-progress", function()
    local status, out = on_terminal("--no-progress " .. slow)
    assert.are.equal(0, status)
    assert.is_falsy(out:find("cray:", 1, true))
  end)

  it("is never written to a pipe or a file", function()
    local status, out, err = support.crayrun(slow)
    assert.are.equal(0, status)
    assert.are.equal("", out)
    assert.are.equal("", err)
  end)
end)
