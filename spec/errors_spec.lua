local support = require "spec.support"
local cray = support.fresh()

describe("error objects", function()
  it("carry kind, message and the traceback of where they were raised", function()
    local e = support.error_of(cray.put)
    assert.is_true(cray.is_error(e))
    assert.are.equal("invalid_argument", e.kind)
    assert.is_string(e.message)
    assert.matches("errors_spec.lua", e.traceback)
  end)

  it("print everything they hold with tostring", function()
    local e = setmetatable({kind = "task_error", message = "boom", task = "double",
                            traceback = "stack traceback:\n\tscript.lua:3: in function",
                            value = 42, waited_at = "main.lua:9"}, cray.Error)
    assert.are.equal("cray task_error error: boom\n  in task: double\n  raised value: 42\n"
                     .. "  stack traceback:\n  \tscript.lua:3: in function\n"
                     .. "  waited for at main.lua:9", tostring(e))
  end)

  it("print the root cause first, then one line per error it caused, then who waited", function()
    local root = setmetatable({kind = "timeout", message = "slow", task = "leaf",
                               traceback = "stack traceback:\n\tleaf.lua:3: in function",
                               waited_at = "mid.lua:5"}, cray.Error)
    local mid = setmetatable({kind = "task_error", message = "task 'mid' failed: slow",
                              task = "mid", cause = root, waited_at = "top.lua:7"}, cray.Error)
    local died = setmetatable({kind = "actor_died", message = "actor A died: its init raised\nmore",
                               cause = mid, waited_at = "main.lua:9"}, cray.Error)
    assert.are.equal("cray timeout error: slow\n  in task: leaf\n  stack traceback:\n"
                     .. "  \tleaf.lua:3: in function\n  which failed in turn:\n"
                     .. "    task 'mid' failed, waiting at mid.lua:5\n"
                     .. "    actor_died: actor A died: its init raised, waiting at top.lua:7\n"
                     .. "  waited for at main.lua:9", tostring(died))
  end)

  it("travel through the store with their fields and cause", function()
    local cause = setmetatable({kind = "timeout", message = "slow"}, cray.Error)
    local e = setmetatable({kind = "task_error", message = "boom", cause = cause,
                            value = {code = 7}}, cray.Error)
    local got = cray.get(cray.put(e))
    assert.is_true(cray.is_error(got))
    assert.is_true(cray.is_error(got.cause))
    assert.are.equal("slow", got.cause.message)
    assert.are.equal(7, got.value.code)
  end)

  it("name a function that cannot be stored and point at the line that stored it", function()
    local co = coroutine.create(print)
    local f = cray.remote(function() return co end, {name = "holder"})
    local line = debug.getinfo(1, "l").currentline
    local e = support.error_of(function() local r = f.remote() return r end)
    assert.are.equal("serialization", e.kind)
    assert.are.equal("spec/errors_spec.lua:" .. (line + 1) .. ": remote function 'holder'"
                     .. ".<upvalue co>: cannot serialize a coroutine", e.message)
    local A = cray.actor{__name = "Holder", get = function() return co end}
    e = support.error_of(function() local h = A.remote() return h end)
    assert.matches("^spec/errors_spec.lua:%d+: actor class 'Holder'.get.<upvalue co>: cannot "
                   .. "serialize a coroutine$", e.message)
    assert.is_nil(e.traceback:find("fill", 1, true), e.traceback)
  end)

  it("never name cray's own files in messages or remote tracebacks", function()
    local f = cray.remote(function(refs)
      local v = cray.get(refs[1], {timeout = 0.01})
      return v
    end)
    local slow = cray.remote(function() cray.sleep(1) end)
    local e = support.error_of(function() local v = cray.get(f.remote({slow.remote()})) return v end)
    assert.are.equal("timeout", e.cause.kind)
    for _, s in ipairs{e.message, e.cause.message, e.cause.traceback, tostring(e)} do
      assert.is_nil(s:find("[cray", 1, true), s)
      assert.is_nil(s:find("lua/", 1, true), s)
      assert.is_nil(s:find("in function 'get'", 1, true), s)
    end
    local A = cray.actor{__name = "Named"}
    e = support.error_of(function() local h = A.options{name = ""}.remote() return h end)
    assert.matches("^spec/errors_spec.lua:%d+: Named.options: option 'name'", e.message)
  end)

  it("are told apart from other values", function()
    assert.is_false(cray.is_error({kind = "timeout"}))
    assert.is_false(cray.is_error("timeout"))
  end)
end)
