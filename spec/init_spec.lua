local support = require "spec.support"
local cray = require "cray"

describe("cray.init and cray.shutdown", function()
  before_each(function()
    if cray.is_initialized() then cray.shutdown() end
  end)

  it("can start and stop many times in one process", function()
    for i = 1, 5 do
      cray.init({workers = 1})
      assert.is_true(cray.is_initialized())
      assert.are.equal(i, cray.get(cray.put(i)))
      cray.shutdown()
      assert.is_false(cray.is_initialized())
    end
  end)

  it("starts with defaults on first use, as Ray does", function()
    assert.is_false(cray.is_initialized())
    assert.are.equal("auto", cray.get(cray.put("auto")))
    assert.is_true(cray.is_initialized())
  end)

  it("takes sizes as numbers or strings with K, M, G suffixes", function()
    for spec, bytes in pairs{["512M"] = 512 * 2^20, ["2G"] = 2 * 2^30, ["1.5K"] = 1536,
                             ["100"] = 100, ["64MB"] = 64 * 2^20, [12345] = 12345} do
      cray.init({memory = spec})
      assert.are.equal(bytes, cray.stats().store.budget)
      cray.shutdown()
    end
  end)

  it("defaults the budget to 30% of physical memory", function()
    cray.init()
    local budget = cray.stats().store.budget
    local f = io.open("/proc/meminfo")
    local kb = tonumber(f:read("*a"):match("MemTotal:%s+(%d+) kB"))
    f:close()
    assert.is_true(math.abs(budget - kb * 1024 * 0.3) < kb * 1024 * 0.01)
  end)

  it("refuses a second init, unless told to ignore it", function()
    cray.init()
    local e = support.error_of(cray.init)
    assert.are.equal("invalid_argument", e.kind)
    assert.matches("already running", e.message)
    cray.init({ignore_reinit_error = true})
    assert.is_true(cray.is_initialized())
  end)

  it("names an unknown option and lists the known ones", function()
    local e = support.error_of(cray.init, {wokers = 2})
    assert.are.equal("invalid_argument", e.kind)
    assert.matches("cray.init: unknown option 'wokers' %(known: ignore_reinit_error, memory, "
                   .. "resources, spill_dir, spill_max, tag_output, task_memory, worker_memory, workers%)",
                   e.message)
    assert.is_false(cray.is_initialized())
  end)

  it("names an option of the wrong type or value", function()
    local cases = {
      {{workers = 0}, "option 'workers' must be a whole number from 1 to 4096 %(got 0%)"},
      {{workers = "4"}, [[option 'workers' must be a whole number from 1 to 4096 %(got "4"%)]]},
      {{memory = "lots"}, [[option 'memory' must be a size from 1 to 2%^63 bytes.*%(got "lots"%)]]},
      {{memory = -1}, "option 'memory' must be a size"},
      {{spill_dir = 3}, "option 'spill_dir' must be a non%-empty string %(got 3%)"},
      {{resources = {db = "two"}}, "option 'resources' must be a table of resource name"},
      {{resources = 2}, "option 'resources' must be a table"},
      {{resources = {db = 0 / 0}}, "option 'resources' must be a table of resource name = amount "
                                   .. "%(a finite number >= 0%) %(got db = nan%)"},
      {{resources = {db = math.huge}}, "%(got db = inf%)"},
      {{resources = {[""] = 1}}, "%(got  = 1%)"},
      {{memory = math.huge}, "option 'memory' must be a size from 1 to 2%^63 bytes.* %(got inf%)"},
      {{memory = 0}, "option 'memory' must be a size from 1 to 2%^63 bytes.* %(got 0%)"},
      {{memory = 2 ^ 64}, "option 'memory' must be a size.* %(got 18446744073709551616%)"},
      {{spill_max = 0}, "option 'spill_max' must be a size from 1 to 2%^63 bytes.* %(got 0%)"},
      {{worker_memory = "64K"}, "option 'worker_memory' must be a size from 1M to 2%^63 bytes.* "
                                .. [[%(got "64K"%)]]},
      {{spill_dir = ""}, [[option 'spill_dir' must be a non%-empty string %(got ""%)]]},
      {{workers = 0 / 0}, "option 'workers' must be a whole number from 1 to 4096 %(got nan%)"},
      {"fast", [[cray.init: options must be a table %(got "fast"%)]]},
    }
    for _, case in ipairs(cases) do
      local e = support.error_of(cray.init, case[1])
      assert.are.equal("invalid_argument", e.kind)
      assert.matches(case[2], e.message)
    end
    assert.is_false(cray.is_initialized())
  end)

  it("keeps the number of workers it was given", function()
    cray.init({workers = 2, resources = {db = 2}})
    assert.are.equal(2, cray.stats().workers)
  end)

  it("is what a stock LuaJIT loads with require", function()
    local cmd = ("LUA_CPATH='%s/?.so' luajit -e %q"):format(support.build,
      'local c = require "cray"; print(c.get(c.put({1, "two"}))[2], c.version)')
    if support.preload ~= "" then cmd = "LD_PRELOAD=" .. support.preload .. " " .. cmd end
    local status, out, err = support.run(cmd)
    assert.are.equal(0, status, err)
    assert.matches("^two\t%d+%.%d+%.%d+\n$", out)
  end)
end)

describe("cray.init and cray.shutdown inside a task or an actor", function()
  -- In a process of its own, under a time limit: a worker that closed the runtime would
  -- wait for its own task to end.
  local function run(code)
    return support.run(("timeout 60 %s/crayrun -w 2 -e %q"):format(support.build, code))
  end

  it("are refused with invalid_argument, and cray goes on running", function()
    local status, out, err = run([[
      local try = cray.remote(function(what)
        local ok, e = pcall(cray[what])
        return ok, e.kind, e.message
      end)
      for _, what in ipairs{"shutdown", "init"} do
        local ok, kind, msg = cray.get(try.remote(what))
        print(what, ok, kind, msg:match("cray%.%a+: .*"))
      end
      local A = cray.actor{stop = function() local ok, e = pcall(cray.shutdown); return e.kind end}
      print("actor", cray.get(A.remote().stop.remote()))
      print("after", cray.get(cray.remote(function() return 42 end).remote()))]])
    assert.are.equal(0, status, err)
    local msg = "only the driver starts and stops cray"
    assert.are.equal(table.concat({
      "shutdown\tfalse\tinvalid_argument\tcray.shutdown: cannot be called inside a task "
        .. "or an actor; " .. msg,
      "init\tfalse\tinvalid_argument\tcray.init: cannot be called inside a task or an "
        .. "actor; " .. msg,
      "actor\tinvalid_argument",
      "after\t42", ""}, "\n"), out)
  end)

  it("init with ignore_reinit_error does nothing there, as in the driver", function()
    local status, out, err = run([[
      local f = cray.remote(function()
        cray.init{ignore_reinit_error = true}
        return cray.is_initialized()
      end)
      print(cray.get(f.remote()))]])
    assert.are.equal(0, status, err)
    assert.are.equal("true\n", out)
  end)
end)

describe("cray.register_class", function()
  it("refuses a bad name, a non-table and a taken name", function()
    assert.matches([[name must be a non%-empty string %(got ""%)]],
                   support.error_of(cray.register_class, "", {}).message)
    assert.matches("metatable must be a table %(got 1%)",
                   support.error_of(cray.register_class, "n", 1).message)
    cray.register_class("spec.Taken", {})
    assert.matches("'spec.Taken' is registered already",
                   support.error_of(cray.register_class, "spec.Taken", {}).message)
  end)
end)
