-- CRAY_LOG: log lines on stderr with time, level, thread and task; the warnings users must
-- know about, and the lifecycle at info and debug.
local support = require "spec.support"

local LINE = "cray %d%d:%d%d:%d%d%.%d%d%d "

-- A script that leaves one task sleeping when it ends: cancelled at exit, a warning.
local LEAVES_WORK = [[-e 'cray.remote(function() cray.sleep(1000) end).remote()']]

local function count(text, plain)
  local n, at = 0, 1
  while true do
    local s, e = text:find(plain, at, true)
    if not s then return n end
    n, at = n + 1, e + 1
  end
end

describe("CRAY_LOG", function()
  it("writes warnings by default, each a whole line with time, level and thread", function()
    local status, _, err = support.crayrun("-w 1 " .. LEAVES_WORK)
    assert.are.equal(0, status, err)
    assert.matches("^" .. LINE .. "warn driver: 1 task and 0 actor calls still queued or running "
                   .. "were cancelled at exit\n$", err)
  end)

  it("leaves warnings out at error", function()
    local status, _, err = support.crayrun("-w 1 " .. LEAVES_WORK, nil, {CRAY_LOG = "error"})
    assert.are.equal(0, status, err)
    assert.are.equal("", err)
  end)

  it("says nothing of the lifecycle at warn", function()
    local status, _, err = support.crayrun("-w 2 -e 'cray.get(cray.put(1))'", nil,
                                           {CRAY_LOG = "warn"})
    assert.are.equal(0, status, err)
    assert.are.equal("", err)
  end)

  it("shows the start and the shutdown at info", function()
    local status, _, err = support.crayrun("-w 2 -m 64M -e 'cray.get(cray.remote(function() end).remote())'",
                                           nil, {CRAY_LOG = "info"})
    assert.are.equal(0, status, err)
    assert.matches(LINE .. "info driver: started 2 workers; object store budget 64%.0 MiB\n", err)
    assert.matches(LINE .. "info driver: shut down\n", err)
    assert.is_nil(err:find(" debug ", 1, true))
  end)

  it("shows each worker starting and stopping at debug", function()
    local status, _, err = support.crayrun("-w 2 -e 'cray.get(cray.remote(function() end).remote())'",
                                           nil, {CRAY_LOG = "debug"})
    assert.are.equal(0, status, err)
    for _, w in ipairs{"w0", "w1"} do
      assert.matches(LINE .. "debug " .. w .. ": worker started\n", err)
      assert.matches(LINE .. "debug " .. w .. ": worker stopped\n", err)
    end
    assert.matches(LINE .. "debug driver: stopping the workers\n", err)
  end)

  it("refuses an unknown level at start, naming it and the levels (crayrun: status 2)", function()
    local status, out, err = support.crayrun("-e 'print(1)'", nil, {CRAY_LOG = "loud"})
    assert.are.equal(2, status)
    assert.are.equal("", out)
    assert.matches("CRAY_LOG=loud is not a log level: use error, warn, info or debug", err, 1, true)
  end)

  it("refuses an unknown level in cray.init", function()
    local ffi = require "ffi"
    pcall(ffi.cdef, "int setenv(const char *name, const char *value, int overwrite);")
    pcall(ffi.cdef, "int unsetenv(const char *name);")
    local cray = require "cray"
    if cray.is_initialized() then cray.shutdown() end
    ffi.C.setenv("CRAY_LOG", "DEBUG", 1)
    local e = support.error_of(cray.init, {workers = 1})
    ffi.C.unsetenv("CRAY_LOG")
    assert.are.equal("runtime", e.kind)
    assert.are.equal("cray.init: CRAY_LOG=DEBUG is not a log level: use error, warn, info or "
                     .. "debug", e.message)
    assert.is_false(cray.is_initialized())
  end)
end)

describe("warnings", function()
  it("say once that spilling started when a small budget forces it", function()
    local status, _, err = support.crayrun("-w 1 -m 1M -e 'local keep = {} " ..
      "for i = 1, 40 do keep[i] = cray.put(string.rep(\"x\", 256 * 1024) .. i) end " ..
      "for i = 1, 40 do assert(#cray.get(keep[i]) > 256 * 1024) end " ..
      "assert(cray.stats().store.spilled_objects > 0)'")
    assert.are.equal(0, status, err)
    assert.are.equal(1, count(err, "spilling started"), err)
    assert.matches(LINE .. "warn spill: spilling started: the object store is past its memory "
                   .. "budget %(%-m/%-%-memory%); %d+ objects %([%d.]+ %a+%) written to [^\n]+, and "
                   .. "more as needed\n", err)
  end)

  it("say when a remote function captures more than 10 MiB, with the task that made it",
     function()
    local status, _, err = support.crayrun("-w 1 -e '" ..
      "local maker = cray.remote(function() " ..
      "  local big = string.rep(\"x\", 11 * 2^20) " ..
      "  local f = cray.remote(function() return #big end, {name = \"bulky\"}) " ..
      "  return cray.get(f.remote()) end, {name = \"maker\"}) " ..
      "assert(cray.get(maker.remote()) == 11 * 2^20) " ..
      "local small = cray.remote(function() return 1 end) cray.get(small.remote())'")
    assert.are.equal(0, status, err)
    assert.are.equal(1, count(err, "\n"), err)
    assert.matches("^" .. LINE .. "warn w0 task maker %x+: remote function 'bulky' is 11%.0 MiB "
                   .. "with the upvalues it captures", err)
  end)

  it("say when a worker's state ran out of memory and was rebuilt", function()
    local status, _, err = support.crayrun("-w 1 --worker-memory 64M --task-memory 64M -e '" ..
      "local hog = cray.remote(function() local t = {} for i = 1, 1e8 do t[i] = {i} end end, " ..
      "{name = \"hog\"}) assert(not pcall(cray.get, hog.remote()))'")
    assert.are.equal(0, status, err)
    assert.matches("^" .. LINE .. "warn w0: the worker's Lua state ran out of memory %(64%.0 MiB, "
                   .. "%-%-worker%-memory%) in task 'hog' and was rebuilt", err)
  end)
end)
