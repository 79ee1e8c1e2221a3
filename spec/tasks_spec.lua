local support = require "spec.support"
local ffi = require "ffi"
local cray = support.fresh({workers = 2})

local clock = support.clock

describe("remote functions", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  it("run a function in a worker and return a ref to its result", function()
    local double = cray.remote(function(x) return 2 * x end)
    local ref = double.remote(21)
    assert.is_true(tostring(ref):match("^ObjectRef") ~= nil)
    assert.are.equal(42, cray.get(ref))
  end)

  it("carry their upvalues by value", function()
    local base, names = 100, {"a", "b"}
    local f = cray.remote(function(i) return base + i, names[i] end)
    assert.are.same({101, "a"}, {cray.get(f.remote(1))})
  end)

  it("run a module function named as 'module.function'", function()
    local double = cray.remote("spec.fixtures.mathx.double")
    assert.are.equal(14, cray.get(double.remote(7)))
    local e = support.error_of(cray.get, cray.remote("spec.fixtures.mathx.not_a_function").remote())
    assert.are.equal("task_error", e.kind)
    assert.are.equal("cray.remote('spec.fixtures.mathx.not_a_function'): the module has no "
                     .. "function 'not_a_function'", e.message)
  end)

  it("are stored once, not with every call", function()
    local f = cray.remote(function(x) return x end)
    cray.get(f.remote(0))
    local puts = cray.stats().store.puts
    local refs = {}
    for i = 1, 50 do refs[i] = f.remote(i) end
    cray.get(refs)
    assert.are.equal(puts + 50, cray.stats().store.puts)
  end)

  it("make new remote functions with options, leaving the original alone", function()
    local f = cray.remote(function() return 1, 2 end)
    local g = f.options{num_returns = 2}
    local a, b = g.remote()
    assert.are.same({1, 2}, {cray.get(a), cray.get(b)})
    assert.are.same({1, 2}, {cray.get(f.remote())})
  end)

  it("say to use the dot when called with a colon", function()
    local f = cray.remote(function() end)
    local e = support.error_of(function() return f:remote(1) end)
    assert.are.equal("invalid_argument", e.kind)
    assert.matches("with a dot: f:remote%(%.%.%.%) passes f itself", e.message)
    e = support.error_of(function() return f:options{} end)
    assert.matches("f.options{...} with a dot", e.message)
  end)

  it("refuse a call without .remote, saying what to write", function()
    local f = cray.remote(function(x) return x end, {name = "ident"})
    local e = support.error_of(function() local r = f(1) return r end)
    assert.are.equal("invalid_argument", e.kind)
    assert.matches("tasks_spec.lua:%d+: call f.remote%(...%) to run remote function 'ident' as a "
                   .. "task, not f%(...%)", e.message)
  end)

  it("accept num_returns up to 4096, the most that works, and refuse more", function()
    local many = cray.remote(function(n)
      local t = {}
      for i = 1, n do t[i] = i end
      return unpack(t)
    end)
    local refs = {many.options{num_returns = 4096}.remote(4096)}
    assert.are.equal(4096, #refs)
    assert.are.equal(4096, cray.get(refs[4096]))
    for _, n in ipairs{4097, 7999, 70000} do
      assert.matches("f.options: option 'num_returns' must be a whole number from 0 to 4096, or "
                     .. "\"streaming\" %(got " .. n .. "%)",
                     support.error_of(many.options, {num_returns = n}).message)
    end
  end)

  it("refuse what is not a function or a module function name", function()
    assert.matches("expects a function or a 'module.function' name %(got 42%)",
                   support.error_of(cray.remote, 42).message)
    assert.matches("name a function as 'module.function' %(got \"nodot\"%)",
                   support.error_of(cray.remote, "nodot").message)
  end)

  it("refuse unknown options and options of the wrong type, naming them", function()
    local fn = function() end
    local cases = {
      {{num_return = 1}, "unknown option 'num_return' %(known: generator_backpressure, "
                         .. "max_retries, name, node, num_cpus, num_returns, resources, "
                         .. "retry_exceptions%)"},
      {{num_returns = -1}, "option 'num_returns' must be a whole number from 0 to 4096, or "
                           .. "\"streaming\" %(got %-1%)"},
      {{num_returns = 1.5}, "option 'num_returns' must be a whole number"},
      {{max_retries = "3"}, "option 'max_retries' must be a whole number from 0 to 2147483647, "
                            .. [[or %-1 for no limit %(got "3"%)]]},
      {{retry_exceptions = 1}, "option 'retry_exceptions' must be a boolean"},
      {{resources = {db = 0}}, "option 'resources' must be a table of resource name = amount"},
      {{name = 7}, "option 'name' must be a non%-empty string %(got 7%)"},
    }
    for _, case in ipairs(cases) do
      local e = support.error_of(cray.remote, fn, case[1])
      assert.are.equal("invalid_argument", e.kind)
      assert.matches(case[2], e.message)
      e = support.error_of(cray.remote(fn).options, case[1])
      assert.matches(case[2], e.message)
    end
  end)

  it("see the driver's package.path, so require works in tasks", function()
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. dir)
    local f = io.open(dir .. "/helper_mod.lua", "w")
    f:write("return {answer = function() return 42 end}\n")
    f:close()
    f = io.open(dir .. "/main.lua", "w")
    f:write([[
      local t = cray.remote(function() return require("helper_mod").answer() end)
      print(cray.get(t.remote()))
    ]])
    f:close()
    local status, out, err = support.crayrun(dir .. "/main.lua")
    os.execute("rm -rf " .. dir)
    assert.are.equal(0, status, err)
    assert.are.equal("42\n", out)
  end)
end)

describe("tasks as coroutines", function()
  it("run recursive fib(20) through nested remote calls on one worker", function()
    cray = support.fresh({workers = 1})
    local fib
    fib = cray.remote(function(n)
      if n < 2 then return n end
      return cray.get(fib.remote(n - 1)) + cray.get(fib.remote(n - 2))
    end)
    assert.are.equal(6765, cray.get(fib.remote(20)))
  end)

  it("yield in cray.sleep, so one worker runs many sleeping tasks at once", function()
    cray = support.fresh({workers = 1})
    local nap = cray.remote(function() cray.sleep(0.2) return true end)
    local t0 = clock()
    local refs = {}
    for i = 1, 50 do refs[i] = nap.remote() end
    assert.are.equal(50, #cray.get(refs))
    assert.is_true(clock() - t0 < 5) -- 50 sleeps of 0.2 s one after another would take 10 s
  end)

  it("yield in cray.wait inside a task", function()
    cray = support.fresh({workers = 1})
    local slow = cray.remote(function(x) cray.sleep(0.05) return x end)
    local gather = cray.remote(function(n)
      local refs = {}
      for i = 1, n do refs[i] = slow.remote(i) end
      local ready, pending = cray.wait(refs, {num_returns = n})
      return #ready, #pending, cray.get(refs)[n]
    end)
    assert.are.same({5, 0, 5}, {cray.get(gather.remote(5))})
  end)

  it("get a table of refs that resolve while the task looks at them", function()
    -- Refs resolving between get's look and its wait once left the task asleep for good.
    cray = support.fresh({workers = 2})
    local small = cray.remote(function() return "ok" end)
    local client = cray.remote(function(n)
      local refs = {}
      for i = 1, n do refs[i] = small.remote() end
      return #cray.get(refs)
    end)
    for _ = 1, 300 do
      local refs = {}
      for i = 1, 4 do refs[i] = client.remote(50) end
      assert.are.same({50, 50, 50, 50}, cray.get(refs, {timeout = 10}))
    end
  end)

  it("say so when cray.get cannot yield inside a C callback", function()
    local slow = cray.remote(function() cray.sleep(0.05) return 1 end)
    local sorter = cray.remote(function(ref)
      local t = {3, 1, 2}
      table.sort(t, function(a, b) return cray.get(ref) and a < b end)
    end)
    local e = support.error_of(cray.get, sorter.remote({slow.remote()}))
    assert.are.equal("task_error", e.kind)
    assert.matches("cray.get cannot wait here: it was called through a C function that "
                   .. "cannot yield %(such as a table.sort comparator", e.message)
  end)

  it("refuse to wait in a coroutine the task made itself", function()
    local slow = cray.remote(function() cray.sleep(0.05) return 1 end)
    local t = cray.remote(function(box)
      local co = coroutine.create(function() return cray.get(box[1]) end)
      return coroutine.resume(co)
    end)
    local ok, msg = cray.get(t.remote({slow.remote()}))
    assert.is_false(ok)
    assert.matches("cannot wait inside a coroutine that the task made itself", msg.message)
  end)
end)

describe("task returns", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  it("hold every returned value in one ref", function()
    local f = cray.remote(function() return 1, "two", {3} end)
    assert.are.same({1, "two", {3}}, {cray.get(f.remote())})
    assert.are.same({1}, cray.get({f.remote()})) -- a table of refs gives first values
  end)

  it("leak nothing when making their refs raises", function()
    -- spec/fixtures/refs_raise.lua makes finalizers raise inside calls, such as when their
    -- refs are made; the task made for such a call must go with the error. It runs in a
    -- fresh process, where the collector's pace does not depend on the specs before.
    local status, out, err = support.crayrun("-w 2 spec/fixtures/refs_raise.lua")
    assert.are.equal(0, status, err)
    local raised, after, before = out:match("raised (%d+) objects (%d+) before (%d+)")
    assert.are.equal("50", raised)
    assert.is_true(tonumber(after) <= tonumber(before), out)
  end)

  it("give num_returns refs of one value each", function()
    local f = cray.remote(function() return "a", "b", "c" end, {num_returns = 3})
    local a, b, c = f.remote()
    assert.are.same({"a", "b", "c"}, cray.get({a, b, c}))
  end)

  it("give no ref for num_returns = 0, and the task still runs", function()
    local f = cray.remote(function() return 1 end, {num_returns = 0})
    local before = cray.stats().tasks.finished
    assert.are.equal(0, select("#", f.remote()))
    local t0 = clock()
    while cray.stats().tasks.finished == before and clock() - t0 < 5 do cray.sleep(0.01) end
    assert.are.equal(before + 1, cray.stats().tasks.finished)
  end)

  it("fail the task when it returns another count than num_returns", function()
    local f = cray.remote(function() return 1 end, {num_returns = 2, name = "short"})
    local a = f.remote()
    local e = support.error_of(cray.get, a)
    assert.are.equal("task_error", e.kind)
    assert.matches("task 'short' returned 1 values but num_returns = 2", e.message)
  end)

  it("fail the task when a result cannot be stored", function()
    local f = cray.remote(function() return io.stdout end)
    local e = support.error_of(cray.get, f.remote())
    assert.are.equal("task_error", e.kind)
    assert.matches("returns: cannot serialize userdata", e.message)
  end)
end)

describe("task arguments", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  it("resolve a top-level ref to its first value before the task starts", function()
    local f = cray.remote(function(a, b) return type(a), a, b end)
    local two = cray.remote(function() return "first", "second" end)
    assert.are.same({"number", 5, "first"}, {cray.get(f.remote(cray.put(5), two.remote()))})
  end)

  it("pass refs nested in tables as refs", function()
    local f = cray.remote(function(box) return tostring(box.ref):match("^ObjectRef") ~= nil,
                                               cray.get(box.ref) end)
    assert.are.same({true, "inside"}, {cray.get(f.remote({ref = cray.put("inside")}))})
  end)

  it("do not run a task whose dependency failed; its error has that cause", function()
    local boom = cray.remote(function() error("dependency broke") end)
    local ran = cray.remote(function(x) return "ran" end, {name = "after"})
    local e = support.error_of(cray.get, ran.remote(1, boom.remote()))
    assert.are.equal("task_error", e.kind)
    assert.matches("task 'after' did not run: its argument 2 failed", e.message)
    assert.is_true(cray.is_error(e.cause))
    assert.matches("dependency broke", e.cause.message)
  end)

  it("complete a 200-deep chain of tasks, each waiting for the last", function()
    local inc = cray.remote(function(x) return x + 1 end)
    local r = cray.put(0)
    for _ = 1, 200 do r = inc.remote(r) end
    assert.are.equal(200, cray.get(r))
  end)

  it("complete a fan-out of 100,000 tasks", function()
    local sq = cray.remote(function(x) return x * x end)
    local refs = {}
    for i = 1, 100000 do refs[i] = sq.remote(i) end
    local vals = cray.get(refs)
    assert.are.equal(100000, #vals)
    assert.are.equal(1e10, vals[100000])
    assert.are.equal(4, vals[2])
  end)
end)

describe("registered classes in tasks", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  it("reach worker states: a task gets and returns tables of the class", function()
    local Vec = {}
    Vec.__index = Vec
    function Vec.new(x, y) return setmetatable({x = x, y = y}, Vec) end
    function Vec.add(a, b) return Vec.new(a.x + b.x, a.y + b.y) end
    cray.register_class("spec.Vec", Vec)
    local add = cray.remote(function(a, b) return a:add(b) end)
    local v = cray.get(add.remote(Vec.new(1, 2), Vec.new(10, 20)))
    assert.are.equal(Vec, getmetatable(v))
    assert.are.same({11, 22}, {v.x, v.y})
  end)

  it("work when registered before cray.init", function()
    local script = [[
      local cray = require "cray"
      local P = {}
      P.__index = P
      function P.twice(p) return 2 * p.v end
      cray.register_class("early.P", P)
      cray.init({workers = 1})
      local f = cray.remote(function(p) return p:twice() end)
      print(cray.get(f.remote(setmetatable({v = 21}, P))))
    ]]
    local cmd = ("LUA_CPATH='%s/?.so' luajit -e %q"):format(support.build, script)
    if support.preload ~= "" then cmd = "LD_PRELOAD=" .. support.preload .. " " .. cmd end
    local status, out, err = support.run(cmd)
    assert.are.equal(0, status, err)
    assert.are.equal("42\n", out)
  end)

  it("say so in the worker when the metatable cannot be stored", function()
    local Handle = {__index = {file = io.stdout}}
    cray.register_class("spec.Handle", Handle)
    local f = cray.remote(function(h) return h end)
    local e = support.error_of(cray.get, f.remote(setmetatable({}, Handle)))
    assert.are.equal("task_error", e.kind)
    assert.matches("class 'spec.Handle' is not registered in this state %(register it here "
                   .. "with cray.register_class, or give it a metatable that can be stored%)",
                   e.message)
  end)
end)

describe("task errors", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  it("carry the message, the remote traceback with file:line, and the task's name", function()
    local f = cray.remote(function() local x = nil; return x.y end, {name = "indexer"})
    local e = support.error_of(cray.get, f.remote())
    assert.are.equal("task_error", e.kind)
    assert.are.equal("indexer", e.task)
    assert.matches("tasks_spec.lua:%d+: attempt to index local 'x'", e.message)
    assert.matches("tasks_spec.lua:%d+", e.traceback)
    assert.matches("in task: indexer", tostring(e))
  end)

  it("keep a raised value that is not a string as `value`", function()
    local f = cray.remote(function() error({code = 7}) end)
    local e = support.error_of(cray.get, f.remote())
    assert.are.equal("task_error", e.kind)
    assert.are.same({code = 7}, e.value)
  end)

  it("make a failed nested get the cause", function()
    local inner = cray.remote(function() error("inner failure") end)
    local outer = cray.remote(function() return cray.get(inner.remote()) end, {name = "outer"})
    local e = support.error_of(cray.get, outer.remote())
    assert.matches("task 'outer' failed", e.message)
    assert.matches("inner failure", e.cause.message)
  end)

  it("say where each waited: the get's line in the task and in the driver", function()
    local inner = cray.remote(function() error("inner failure") end)
    local outer = cray.remote(function()
      local v = cray.get(inner.remote())
      return v
    end, {name = "outer"})
    local line = debug.getinfo(1, "l").currentline
    local e = support.error_of(function() local v = cray.get(outer.remote()) return v end)
    assert.are.equal("spec/tasks_spec.lua:" .. (line - 3), e.cause.waited_at)
    assert.are.equal("spec/tasks_spec.lua:" .. (line + 1), e.waited_at)
  end)

  it("keep the message of a chain as long as its root's, whatever its depth", function()
    local chain
    chain = cray.remote(function(n)
      if n == 0 then error("root cause", 0) end
      local v = cray.get(chain.remote(n - 1))
      return v
    end, {name = "link"})
    local e = support.error_of(cray.get, chain.remote(25))
    assert.are.equal("task 'link' failed: root cause", e.message)
  end)

  it("are printed by crayrun from the root cause, one line per task, then the driver's line", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write([[
local chain
chain = cray.remote(function(n)
  if n == 0 then error("root cause here") end
  local v = cray.get(chain.remote(n - 1))
  return v
end, {name = "link"})
local r = chain.remote(25)
local v = cray.get(r)
]])
    f:close()
    local status, _, err = support.crayrun(path)
    os.remove(path)
    assert.are.equal(1, status)
    local short = path:match("[^/]*$")
    local lines = {}
    for line in err:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.matches("^crayrun: cray task_error error: .*" .. short .. ":3: root cause here$", lines[1])
    assert.are.equal("  in task: link", lines[2])
    assert.are.equal("  which failed in turn:", lines[6])
    for i = 7, 31 do
      assert.matches("^    task 'link' failed, waiting at .*" .. short .. ":4$", lines[i])
    end
    assert.matches("^  waited for at .*" .. short .. ":8$", lines[32])
    assert.are.equal(32, #lines)
  end)

  it("give the line of the top frame when the VM raised the error there", function()
    local function inner(x)
      local y = x.field + 1
      return y
    end
    local f = cray.remote(function(x)
      local r = inner(x)
      return r
    end)
    local line = debug.getinfo(1, "l").currentline
    local e = support.error_of(cray.get, f.remote(1))
    assert.matches("attempt to index local 'x'", e.message)
    assert.matches("^stack traceback:\n\tspec/tasks_spec.lua:" .. (line - 7)
                   .. ": in function 'inner'\n\tspec/tasks_spec.lua:" .. (line - 3) .. ":",
                   e.traceback)
  end)

  it("are printed in full by crayrun, which exits 1", function()
    local status, _, err = support.crayrun(
      "-e 'local f = cray.remote(function() error(\"remote boom\") end, {name = \"bad\"}) " ..
      "cray.get(f.remote())'")
    assert.are.equal(1, status)
    assert.matches("cray task_error error: %(command line%):1: remote boom", err)
    assert.matches("in task: bad", err)
    assert.matches("stack traceback", err)
  end)
end)

describe("task retries", function()
  before_each(function() cray = support.fresh({workers = 1}) end)

  it("re-run a task that raised, with retry_exceptions", function()
    local flaky = cray.remote(function(key)
      _G[key] = (_G[key] or 0) + 1
      if _G[key] < 3 then error("not yet") end
      return _G[key]
    end, {max_retries = 5, retry_exceptions = true})
    assert.are.equal(3, cray.get(flaky.remote("flaky1")))
  end)

  it("do not re-run a raising task without retry_exceptions", function()
    local count = cray.remote(function(key) _G[key] = (_G[key] or 0) + 1 return _G[key] end)
    local flaky = cray.remote(function(key)
      _G[key] = (_G[key] or 0) + 1
      error("once")
    end, {max_retries = 5})
    support.error_of(cray.get, flaky.remote("flaky2"))
    assert.are.equal(2, cray.get(count.remote("flaky2"))) -- ran once, then this
  end)

  it("fail with the last error when the retries run out", function()
    local always = cray.remote(function() error("always") end,
                               {max_retries = 2, retry_exceptions = true})
    local e = support.error_of(cray.get, always.remote())
    assert.matches("always", e.message)
  end)

  it("rebuild a worker state that ran out of memory, then fail with out_of_memory", function()
    cray = support.fresh({workers = 1, worker_memory = "64M", task_memory = "64M"})
    local hog = cray.remote(function()
      local t = {}
      for i = 1, 1e8 do t[i] = {i} end
      return #t
    end, {name = "hog", max_retries = 1})
    local e = support.error_of(cray.get, hog.remote())
    assert.are.equal("out_of_memory", e.kind)
    assert.matches("task 'hog' was lost: worker 0's Lua state ran out of memory", e.message)
    local fine = cray.remote(function() return "still works" end)
    assert.are.equal("still works", cray.get(fine.remote()))
  end)

  it("re-run the tasks that were waiting in a state that was rebuilt", function()
    cray = support.fresh({workers = 1, worker_memory = "64M", task_memory = "64M"})
    local sleeper = cray.remote(function(key)
      _G[key] = (_G[key] or 0) + 1 -- the count starts again in a new state
      cray.sleep(0.2)
      return "woke"
    end)
    local hog = cray.remote(function()
      local t = {}
      for i = 1, 1e8 do t[i] = {i} end
    end, {max_retries = 0})
    local s = sleeper.remote("rebuilt")
    cray.sleep(0.05)
    assert.are.equal("out_of_memory", support.error_of(cray.get, hog.remote()).kind)
    assert.are.equal("woke", cray.get(s, {timeout = 10}))
  end)

  it("re-run a task that waited in cray.get on a ref only its lost state held", function()
    cray = support.fresh({workers = 1, worker_memory = "64M", task_memory = "64M"})
    -- The hog's rebuild frees the waiter's ref; the slow task, lost without retries, then
    -- resolves and frees the entry the waiter was subscribed to before the waiter resumes.
    local slow = cray.remote(function() cray.sleep(0.2); return "slow" end, {max_retries = 0})
    local waiter = cray.remote(function(f) return cray.get(f.remote()) end)
    local hog = cray.remote(function()
      local t = {}
      for i = 1, 1e8 do t[i] = {i} end
    end, {max_retries = 0})
    local w = waiter.remote(slow)
    cray.sleep(0.05)
    assert.are.equal("out_of_memory", support.error_of(cray.get, hog.remote()).kind)
    assert.are.equal("slow", cray.get(w, {timeout = 10}))
  end)
end)

describe("task resources", function()
  it("bound how many tasks holding a resource run at once", function()
    cray = support.fresh({workers = 2, resources = {db = 1}})
    local use = cray.remote(function()
      local t0 = clock()
      cray.sleep(0.05)
      return t0, clock()
    end, {resources = {db = 1}})
    local refs = {}
    for i = 1, 6 do refs[i] = use.remote() end
    local spans = {}
    for i = 1, 6 do spans[i] = {cray.get(refs[i])} end
    table.sort(spans, function(a, b) return a[1] < b[1] end)
    for i = 2, 6 do assert.is_true(spans[i][1] >= spans[i - 1][2]) end
  end)

  it("are given back by a task cancelled while it waited for them", function()
    cray = support.fresh({workers = 2, resources = {db = 1}})
    local hold = cray.remote(function() cray.sleep(0.1) return "held" end, {resources = {db = 1}})
    local first, second = hold.remote(), hold.remote()
    cray.sleep(0.02)
    cray.cancel(second)
    assert.are.equal("held", cray.get(first))
    assert.are.equal("cancelled", support.error_of(cray.get, second).kind)
    assert.are.equal("held", cray.get(hold.remote(), {timeout = 5}))
  end)

  it("refuse at submission a need larger than what exists, or an unknown resource", function()
    cray = support.fresh({workers = 2, resources = {db = 2}})
    local f = cray.remote(function() end, {resources = {db = 3}, name = "greedy"})
    local e = support.error_of(function() return f.remote() end)
    assert.are.equal("invalid_argument", e.kind)
    assert.matches("task 'greedy' needs 3 of resource 'db', but the runtime has only 2", e.message)
    local g = cray.remote(function() end, {resources = {gpu = 1}, name = "gpu"})
    e = support.error_of(function() return g.remote() end)
    assert.matches("needs resource 'gpu', which this runtime does not have", e.message)
  end)

  it("refuse a need of NaN, infinity or 0, which would lift or dodge the limit", function()
    cray = support.fresh({workers = 2, resources = {db = 1}})
    for _, case in ipairs{{0 / 0, "nan"}, {math.huge, "inf"}, {0, "0"}, {-1, "%-1"}} do
      local e = support.error_of(cray.remote, function() end, {resources = {db = case[1]}})
      assert.matches("cray.remote: option 'resources' must be a table of resource name = amount "
                     .. "%(a finite number > 0%), at most 16 of them %(got db = " .. case[2] .. "%)",
                     e.message)
    end
    local seventeen = {}
    for i = 1, 17 do seventeen["r" .. i] = 1 end
    assert.matches("%(got 17 resources%)",
                   support.error_of(cray.remote, function() end, {resources = seventeen}).message)
  end)
end)

describe("cray.cancel", function()
  before_each(function() cray = support.fresh({workers = 1}) end)

  it("keeps a queued task from ever running; get raises cancelled", function()
    local busy = cray.remote(function() cray.sleep(0.2) return "busy" end)
    local mark = cray.remote(function(key) _G[key] = true return "ran" end, {name = "queued"})
    local check = cray.remote(function(key) return _G[key] == true end)
    local b = busy.remote()
    local q = mark.remote("cancel1")
    assert.is_true(cray.cancel(q))
    local e = support.error_of(cray.get, q)
    assert.are.equal("cancelled", e.kind)
    assert.matches("task 'queued' was cancelled", e.message)
    assert.are.equal("busy", cray.get(b))
    assert.is_false(cray.get(check.remote("cancel1")))
  end)

  it("stops a running task at its next yield point", function()
    local forever = cray.remote(function() while true do cray.sleep(0.01) end end)
    local r = forever.remote()
    cray.sleep(0.05)
    assert.is_true(cray.cancel(r))
    assert.are.equal("cancelled", support.error_of(cray.get, r, {timeout = 5}).kind)
  end)

  it("returns false for a finished task or a put object, and refuses non-refs", function()
    local f = cray.remote(function() return 1 end)
    local r = f.remote()
    cray.get(r)
    assert.is_false(cray.cancel(r))
    assert.is_false(cray.cancel(cray.put(1)))
    assert.matches("cray.cancel: expects an ObjectRef %(got 1%)",
                   support.error_of(cray.cancel, 1).message)
  end)

  -- jit.off: LuaJIT calls no hook from a loop it compiled (see docs/lua-api.md).
  local spin = function() jit.off() local n = 0 while true do n = n + 1 end end

  it("interrupts a running task that never yields; get raises cancelled", function()
    local f = cray.remote(spin, {name = "spin"})
    local r = f.remote()
    while cray.stats().tasks.running == 0 do cray.sleep(0.01) end
    assert.is_true(cray.cancel(r))
    local e = support.error_of(cray.get, r, {timeout = 30})
    assert.are.equal("cancelled", e.kind)
    assert.matches("task 'spin' was cancelled while it ran", e.message)
    assert.are.equal(1, cray.get(cray.remote(function() return 1 end).remote(), {timeout = 30}))
  end)

  it("interrupts it again when it catches the error, and fails it all the same", function()
    local f = cray.remote(function()
      jit.off()
      for _ = 1, 3 do pcall(function() local n = 0 while true do n = n + 1 end end) end
      return "caught three times"
    end)
    local r = f.remote()
    while cray.stats().tasks.running == 0 do cray.sleep(0.01) end
    cray.cancel(r)
    assert.are.equal("cancelled", support.error_of(cray.get, r, {timeout = 30}).kind)
  end)

  -- A parent that starts a child that starts a grandchild; each posts the refs it made on
  -- a board, so the driver can look at them.
  local function family(child_seconds)
    local Board = cray.actor{
      init = function(self) self.refs = {} end,
      post = function(self, name, boxed) self.refs[name] = boxed end,
      refs = function(self) return self.refs end,
    }
    local board = Board.remote()
    local grandchild = cray.remote(function() cray.sleep(1000) end)
    local child = cray.remote(function(b, seconds)
      b.post.remote("grandchild", {grandchild.remote()}) -- boxed: a top-level ref is waited for
      cray.sleep(seconds)
      return "child done"
    end)
    local parent = cray.remote(function(b, seconds)
      local c = child.remote(b, seconds)
      b.post.remote("child", {c})
      return cray.get(c)
    end)
    local p = parent.remote(board, child_seconds)
    local refs
    repeat refs = cray.get(board.refs.remote()) until refs.child and refs.grandchild
    return p, refs.child[1], refs.grandchild[1]
  end

  it("cancels the tasks a task started, and theirs, by default (recursive = true)", function()
    cray = support.fresh({workers = 2})
    -- Many rounds: a woken parent can end on the other worker while its cancel goes on.
    for _ = 1, 200 do
      local p, c, g = family(1000)
      assert.is_true(cray.cancel(p))
      for _, r in ipairs{p, c, g} do
        assert.are.equal("cancelled", support.error_of(cray.get, r, {timeout = 30}).kind)
      end
    end
  end)

  it("leaves them running with recursive = false", function()
    cray = support.fresh({workers = 2})
    local p, c, g = family(0.2)
    assert.is_true(cray.cancel(p, {recursive = false}))
    assert.are.equal("cancelled", support.error_of(cray.get, p, {timeout = 30}).kind)
    assert.are.equal("child done", cray.get(c, {timeout = 30}))
    assert.is_true(cray.cancel(g))
  end)

  it("refuses force and unknown options, naming them", function()
    local r = cray.put(1)
    local e = support.error_of(cray.cancel, r, {force = true})
    assert.are.equal("invalid_argument", e.kind)
    assert.matches("cray.cancel: option 'force' is not supported: tasks run as coroutines on "
                   .. "shared worker threads, which cannot be killed", e.message, 1, true)
    assert.matches("cray.cancel: unknown option 'forse' (known: recursive)",
                   support.error_of(cray.cancel, r, {forse = true}).message, 1, true)
    assert.matches("cray.cancel: option 'recursive' must be a boolean (got \"yes\")",
                   support.error_of(cray.cancel, r, {recursive = "yes"}).message, 1, true)
    assert.matches("cray.cancel: options must be a table (got 3)",
                   support.error_of(cray.cancel, r, 3).message, 1, true)
  end)
end)

describe("timeouts", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  it("make get raise kind timeout when a task is late", function()
    local slow = cray.remote(function() cray.sleep(1) return 1 end)
    local e = support.error_of(cray.get, slow.remote(), {timeout = 0.05})
    assert.are.equal("timeout", e.kind)
    assert.matches("cray.get: timed out after 0.05 s; 1 of 1 objects not ready", e.message)
  end)

  it("make get inside a task raise kind timeout there", function()
    local slow = cray.remote(function() cray.sleep(1) return 1 end)
    local impatient = cray.remote(function()
      local ok, e = pcall(cray.get, slow.remote(), {timeout = 0.05})
      return ok, e.kind
    end)
    assert.are.same({false, "timeout"}, {cray.get(impatient.remote())})
  end)

  it("make wait return what is ready when the time is up", function()
    local slow = cray.remote(function(s) cray.sleep(s) return s end)
    local refs = {slow.remote(0), slow.remote(2)}
    local ready, pending = cray.wait(refs, {num_returns = 2, timeout = 0.3})
    assert.are.equal(1, #ready)
    assert.are.equal(1, #pending)
    assert.is_true(pending[1] == refs[2])
  end)

  it("resume a task once when its result and its deadline come together", function()
    local quick = cray.remote(function(i) return i end)
    local racer = cray.remote(function(n)
      local got, late = 0, 0
      for i = 1, n do
        local ok, v = pcall(cray.get, quick.remote(i), {timeout = 0.0005})
        if ok and v == i then got = got + 1 elseif not ok and v.kind == "timeout" then late = late + 1 end
      end
      return got + late
    end)
    local refs = {}
    for i = 1, 4 do refs[i] = racer.remote(500) end
    assert.are.same({500, 500, 500, 500}, cray.get(refs))
  end)

  it("refuse a sleep that is not a number of seconds", function()
    assert.matches("cray.sleep: seconds must be a number >= 0 %(got %-1%)",
                   support.error_of(cray.sleep, -1).message)
    assert.matches("cray.sleep: seconds must be a number >= 0 %(got nan%)",
                   support.error_of(cray.sleep, 0 / 0).message)
  end)

  it("refuse a timeout of NaN, showing it", function()
    local r = cray.put(1)
    assert.matches("cray.get: option 'timeout' must be a number of seconds >= 0 %(got nan%)",
                   support.error_of(cray.get, r, {timeout = 0 / 0}).message)
    assert.matches("cray.wait: option 'timeout' must be a number of seconds >= 0 %(got nan%)",
                   support.error_of(cray.wait, {r}, {timeout = 0 / 0}).message)
  end)

  it("of infinity or more than 31 years wait forever: get and wait return the result", function()
    local slow = cray.remote(function() cray.sleep(0.1) return 5 end)
    for _, t in ipairs{math.huge, 1e300, 1e10} do
      assert.are.equal(5, cray.get(slow.remote(), {timeout = t}))
      assert.are.equal(1, #cray.wait({slow.remote()}, {timeout = t}))
    end
    local inner = cray.remote(function(t)
      return cray.get(slow.remote(), {timeout = t}), #cray.wait({slow.remote()}, {timeout = t})
    end)
    assert.are.same({5, 1}, {cray.get(inner.remote(math.huge))})
    assert.are.same({5, 1}, {cray.get(inner.remote(1e300))})
  end)

  it("let a task sleep for infinity or 1e300 s until it is cancelled", function()
    local sleeper = cray.remote(function(s) cray.sleep(s) return "woke" end)
    for _, s in ipairs{math.huge, 1e300} do
      local r = sleeper.remote(s)
      local ready = cray.wait({r}, {timeout = 0.2})
      assert.are.equal(0, #ready)
      assert.is_true(cray.cancel(r))
      assert.are.equal("cancelled", support.error_of(cray.get, r).kind)
    end
  end)

  it("let the driver sleep for infinity or 1e300 s without spinning a core", function()
    local ffi = require "ffi"
    pcall(ffi.cdef, [[
      struct cray_spec_rusage { long utime[2], stime[2]; long rest[14]; };
      int getrusage(int who, struct cray_spec_rusage *usage);
    ]])
    local function children_cpu()
      local u = ffi.new("struct cray_spec_rusage")
      ffi.C.getrusage(-1, u) -- RUSAGE_CHILDREN
      return tonumber(u.utime[0]) + tonumber(u.utime[1]) * 1e-6
             + tonumber(u.stime[0]) + tonumber(u.stime[1]) * 1e-6
    end
    for _, s in ipairs{"math.huge", "1e300"} do
      local before = children_cpu()
      -- timeout(1) ends it after 2 s of sleep; a spinning sleep takes the core that long.
      local status = support.run("timeout 2 " .. support.build .. "/crayrun -w 1 -e 'cray.sleep("
                                 .. s .. ")'")
      assert.are.equal(124, status)
      assert.is_true(children_cpu() - before < 0.5, s)
    end
  end)
end)

describe("task counters", function()
  it("count submitted, finished and failed tasks", function()
    cray = support.fresh({workers = 2})
    local ok = cray.remote(function() return 1 end)
    local bad = cray.remote(function() error("x") end)
    cray.get({ok.remote(), ok.remote()})
    pcall(cray.get, bad.remote())
    local t = cray.stats().tasks
    assert.are.equal(3, t.submitted)
    assert.are.equal(2, t.finished)
    assert.are.equal(1, t.failed)
    assert.are.equal(0, t.running)
  end)
end)
