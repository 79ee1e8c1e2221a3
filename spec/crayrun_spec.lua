local support = require "spec.support"

local script = support.script

describe("crayrun", function()
  it("prints its version with -v and --version", function()
    for _, flag in ipairs{"-v", "--version"} do
      local status, out = support.crayrun(flag)
      assert.are.equal(0, status)
      assert.matches("^crayrun %d+%.%d+%.%d+ %(LuaJIT", out)
    end
  end)

  it("lists every option with -h", function()
    local status, out = support.crayrun("--help")
    assert.are.equal(0, status)
    for _, opt in ipairs{"-e CODE", "-w, --workers", "-m, --memory", "--spill-dir",
                         "--spill-max", "--worker-memory", "--task-memory", "--resource NAME=N",
                         "--stats", "--no-progress", "--tag-output", "--objects-at-exit", "-v, --version",
                         "-h, --help"} do
      assert.is_truthy(out:find(opt, 1, true), opt)
    end
  end)

  it("runs a script with `arg` and `...` as luajit sets them, cray ready", function()
    local path = script([[
      print(arg[0], arg[1], arg[2], select("#", ...), ...)
      print(cray.get(cray.put("ready")), cray.is_initialized())
    ]])
    local status, out, err = support.crayrun(path .. " one two")
    os.remove(path)
    assert.are.equal(0, status, err)
    assert.are.equal(path .. "\tone\ttwo\t2\tone\ttwo\nready\ttrue\n", out)
  end)

  it("runs -e chunks in order before the script, and a script from stdin", function()
    local status, out = support.crayrun("-e 'x = 1' -e 'x = x + 1' - a", "print(x, arg[1])")
    assert.are.equal(0, status)
    assert.are.equal("2\ta\n", out)
  end)

  it("passes -w, -m and --resource to cray.init", function()
    local status, out = support.crayrun(
      "-w 3 -m 512M --resource db=2 --workers=2 -e 'local s = cray.stats() " ..
      "print(s.workers, s.store.budget)'")
    assert.are.equal(0, status)
    assert.are.equal(("2\t%d\n"):format(512 * 2^20), out)
  end)

  it("prints a table of what ran with --stats", function()
    local status, _, err = support.crayrun("-w 2 --stats -e 'k = cray.put(1)' -e " ..
      "'cray.get(cray.remote(function() end).options{name = \"noop\"}.remote())'")
    assert.are.equal(0, status)
    assert.matches("cray stats: [%d.]+s, 2 workers", err)
    assert.matches("\n  noop +1 +0 +0 ", err)
    assert.matches("store: [%d.]+ %a+ peak of [%d.]+ %a+ budget", err)
    assert.matches("in 3 objects now; 3 puts, 0 frees", err) -- k, the function, its result
    assert.matches("workers busy: 1: %d+%%, 2: %d+%%", err)
  end)

  it("exits 1 on an uncaught error, printing message and traceback", function()
    local path = script("local function f() error('it broke') end\nf()\n")
    local status, out, err = support.crayrun(path)
    os.remove(path)
    assert.are.equal(1, status)
    assert.are.equal("", out)
    assert.matches("crayrun: .*:1: it broke", err)
    assert.matches("stack traceback:", err)
    assert.matches(":2: in main chunk", err)
  end)

  it("prints a cray error object in full", function()
    local status, _, err = support.crayrun("-e 'cray.get(42)'")
    assert.are.equal(1, status)
    assert.matches("crayrun: cray invalid_argument error: %(command line%):1: cray.get", err)
    assert.matches("stack traceback", err)
  end)

  it("exits 1 when the script cannot be loaded", function()
    local status, _, err = support.crayrun("/nonexistent/script.lua")
    assert.are.equal(1, status)
    assert.matches("cannot open /nonexistent/script.lua", err)
    local path = script("this is not lua")
    status, _, err = support.crayrun(path)
    os.remove(path)
    assert.are.equal(1, status)
    assert.matches("'=' expected near 'is'", err)
  end)

  it("exits 2 with a message on bad usage", function()
    local cases = {
      {"--frobnicate x.lua", "unknown option '%-%-frobnicate'"},
      {"-w", "option '%-w' needs a value"},
      {"-w zero -e 1", "%-%-workers wants a whole number from 1 to 4096, not 'zero'"},
      {"-w 0 -e 1", "not '0'"},
      {"-m lots -e 1", "%-%-memory wants a size of at least 1 byte, such as 512M or 2G, not 'lots'"},
      {"-m 0 -e 1", "%-%-memory wants a size of at least 1 byte, such as 512M or 2G, not '0'"},
      {"--worker-memory 64K -e 1", "%-%-worker%-memory wants a size of at least 1M, such as 512M or "
                                   .. "2G, not '64K'"},
      {"--spill-max 1Q -e 1", "%-%-spill%-max wants a size"},
      {"--task-memory 1Q -e 1", "%-%-task%-memory wants a size"},
      {"--resource db -e 1", "%-%-resource wants NAME=N with N a finite number >= 0, not 'db'"},
      {"--resource db=nan -e 1", "not 'db=nan'"},
      {"--resource db=inf -e 1", "not 'db=inf'"},
      {"--resource =2 -e 1", "not '=2'"},
      {"--resource db=-1 -e 1", "not 'db=%-1'"},
      {"--spill-dir '' -e 1", [[cray.init: option 'spill_dir' must be a non%-empty string %(got ""%)]]},
      {"", "no script given"},
    }
    for _, case in ipairs(cases) do
      local status, out, err = support.crayrun(case[1])
      assert.are.equal(2, status, case[1])
      assert.are.equal("", out)
      assert.matches(case[2], err)
      assert.matches("Try 'crayrun %-%-help'", err)
    end
  end)
end)

-- A crayrun run with $TMPDIR pointed at a fresh directory; returns its exit status,
-- stdout, stderr (less the warning that spilling started) and what it left in $TMPDIR. With `sig`, the script creates the file
-- named by the global `ready` once it is where the signal should find it, and crayrun is
-- sent `sig` then.
local function run_clean(body, sig, options, env)
  local tmp = os.tmpname()
  os.remove(tmp)
  os.execute("mkdir " .. tmp)
  local ready = os.tmpname()
  os.remove(ready)
  local path = script(("ready = %q\n"):format(ready) .. body)
  -- A run that hangs fails, after two minutes.
  local cmd = ("%s TMPDIR=%s timeout --foreground -k 5 120 %s/crayrun -m 1M -w 2 %s %s"):format(
    env or "", tmp, support.build, options or "", path)
  if sig then
    cmd = ("%s & pid=$!; n=0; while [ ! -e %s ] && [ $n -lt 600 ]; do sleep 0.05; " ..
           "n=$((n + 1)); done; kill -%s $pid; wait $pid"):format(cmd, ready, sig)
  end
  local sh = script(cmd .. "\n")
  local status, out, err = support.run("sh " .. sh)
  local p = io.popen("ls -A " .. tmp)
  local left = p:read("*a")
  p:close()
  os.execute(("rm -rf %s %s %s %s"):format(tmp, ready, path, sh))
  -- SPILL spills on purpose; its warning is log_spec's to check.
  err = err:gsub("cray [%d:.]+ warn spill: spilling started:[^\n]*\n", "")
  return status, out, err, left
end

-- Script lines: spill an object (so there is a spill directory to clean up), then a task
-- that loops without yielding (jit.off: LuaJIT does not run hooks in compiled loops) and
-- one that sleeps.
local SPILL = [[
local keep = {}
for i = 1, 4 do keep[i] = cray.put(("x"):rep(2^20)) end
while cray.stats().store.spilled_objects == 0 do end
local spin = cray.remote(function() jit.off() local n = 0 while true do n = n + 1 end end)
local nap = cray.remote(function() cray.sleep(1000) end)
local function signal_me() io.open(ready, "w"):close() end
]]

describe("crayrun on SIGINT and SIGTERM", function()
  it("exits 130 after Ctrl-C while the driver waits, shut down, nothing left in $TMPDIR",
     function()
    local status, out, err, left = run_clean(SPILL .. [[
      local r = nap.remote()
      spin.remote()
      signal_me()
      cray.get(r)
      print("not reached")]], "INT")
    assert.are.equal(130, status, err)
    assert.are.equal("", out)
    assert.matches("^crayrun: interrupted\n", err)
    assert.matches("warn driver: 2 tasks and 0 actor calls still queued or running were "
                   .. "cancelled at exit\n", err, 1, true)
    assert.are.equal("", left)
  end)

  it("exits 143 after SIGTERM while the driver sleeps", function()
    local status, out, err, left = run_clean(SPILL .. [[
      spin.remote()
      signal_me()
      cray.sleep(1000)
      print("not reached")]], "TERM")
    assert.are.equal(143, status, err)
    assert.are.equal("", out)
    assert.matches("^crayrun: terminated\n", err)
    assert.are.equal("", left)
  end)

  -- ThreadSanitizer holds a signal back until the thread makes a call it intercepts, and a
  -- driver looping in LuaJIT's interpreter makes none.
  local it_untsan = support.san == "thread" and pending or it
  it_untsan("exits 130 after Ctrl-C while the driver itself loops", function()
    local status, _, err, left = run_clean(SPILL .. [[
      jit.off()
      signal_me()
      while true do end]], "INT")
    assert.are.equal(130, status, err)
    assert.are.equal("", left)
  end)
end)

describe("crayrun at the end of the script", function()
  it("interrupts a task that loops without yielding, and says what it cancelled", function()
    local status, out, err, left = run_clean(SPILL .. [[
      local A = cray.actor{ping = function() return 1 end, work = function() cray.sleep(1000) end}
      local a = A.remote()
      cray.get(a.ping.remote())
      spin.remote()
      while cray.stats().tasks.running == 0 do end
      for _ = 1, 3 do a.work.remote() end
      print("end")]])
    assert.are.equal(0, status, err)
    assert.are.equal("end\n", out)
    assert.matches("^cray %d%d:%d%d:%d%d%.%d%d%d warn driver: 1 task and 3 actor calls still "
                   .. "queued or running were cancelled at exit\n$", err)
    assert.are.equal("", left)
  end)

  it("says nothing when no work was left", function()
    local status, out, err = run_clean([[print(cray.get(cray.remote(function() return 1 end).remote()))]])
    assert.are.equal(0, status)
    assert.are.equal("1\n", out)
    assert.are.equal("", err)
  end)

  it("exits 1 on an uncaught error with such a task running, shut down", function()
    local status, _, err, left = run_clean(SPILL .. [[
      spin.remote()
      while cray.stats().tasks.running == 0 do end
      error("boom")]])
    assert.are.equal(1, status)
    assert.matches("boom", err)
    assert.are.equal("", left)
  end)

  it("lets cray.shutdown() return with such a task running", function()
    local status, out, err, left = run_clean(SPILL .. [[
      local r = spin.remote()
      while cray.stats().tasks.running == 0 do end
      cray.shutdown()
      print("down", cray.is_initialized())]])
    assert.are.equal(0, status, err)
    assert.are.equal("down\tfalse\n", out)
    assert.matches("cancelled by cray.shutdown", err, 1, true)
    assert.are.equal("", left)
  end)
end)

-- A task in a loop that LuaJIT compiles (no jit.off): no hook runs in it, so nothing
-- interrupts it (docs/lua-api.md, "Tasks that cannot be interrupted").
local HOT = [[
local hot = cray.remote(function() local n = 0 while true do n = n + 1 end end, {name = "hot"})
]]
-- Under AddressSanitizer leak checking is off for these runs: the abandoned task's Lua
-- state still runs at exit, and LuaJIT's tagged values hide its heap from the checker.
local STOP_1S = "ASAN_OPTIONS=detect_leaks=0 CRAY_STOP_TIMEOUT=1"

describe("a task that cannot be interrupted", function()
  it("makes crayrun give up after CRAY_STOP_TIMEOUT: exit 3, the task named, nothing left",
     function()
    local status, out, err, left = run_clean(SPILL .. HOT .. [[
      hot.remote()
      while cray.stats().tasks.running == 0 do end
      print("end")]], nil, nil, STOP_1S)
    assert.are.equal(3, status, err)
    assert.are.equal("end\n", out)
    assert.matches("^cray %d%d:%d%d:%d%d%.%d%d%d error driver: gave up stopping the runtime "
                   .. "after 1 s: 1 task did not end: task "
                   .. "'hot' %(id %x+, worker [01]%); a loop that LuaJIT compiled cannot be "
                   .. "interrupted, nor a long C call, so it runs on until the process exits\n$",
                   err)
    assert.are.equal("", left)
  end)

  it("makes cray.shutdown() raise, naming it; the script goes on and exits 3", function()
    local status, out, err, left = run_clean(SPILL .. HOT .. [[
      hot.remote()
      while cray.stats().tasks.running == 0 do end
      local ok, e = pcall(cray.shutdown)
      print(ok, e.kind, cray.is_initialized())
      print(e.message)]], nil, nil, STOP_1S)
    assert.are.equal(3, status, err)
    local first, message = out:match("^([^\n]*)\n([^\n]*)\n$")
    assert.are.equal("false\truntime\tfalse", first)
    assert.matches("cray.shutdown: gave up stopping the runtime after 1 s: 1 task did not end: "
                   .. "task 'hot' %(id %x+, worker [01]%)", message)
    assert.are.equal("", err)
    assert.are.equal("", left)
  end)

  it("is cancelled for its caller at once: get raises cancelled, the worker stays busy",
     function()
    local status, out, err = run_clean(HOT .. [[
      local r = hot.remote()
      while cray.stats().tasks.running == 0 do end
      print(cray.cancel(r))
      local ok, e = pcall(cray.get, r, {timeout = 60})
      print(ok, e.kind, e.message)
      print(cray.stats().tasks.running)]], nil, nil, STOP_1S)
    assert.are.equal(3, status, err)
    assert.are.equal("true\nfalse\tcancelled\ttask 'hot' was cancelled while it ran\n1\n", out)
    assert.matches("task 'hot'", err, 1, true)
  end)

  it("ends a streaming caller's iteration at once: the items made, then cancelled", function()
    -- The producer compiles its loop, then says so in a file, then loops for ever.
    local status, out, err = run_clean([[
      local flag = os.tmpname()
      os.remove(flag)
      local hot = cray.remote(function(path)
        coroutine.yield("first")
        local function spin(limit) local n = 0 while n < limit do n = n + 1 end end
        spin(1e4)
        io.open(path, "w"):close()
        spin(math.huge)
      end, {name = "hot", num_returns = "streaming"})
      local gen = hot.remote(flag)
      print(cray.get(gen()))
      while not os.remove(flag) do cray.sleep(0.01) end
      print(cray.cancel(gen))
      local ok, e = pcall(cray.get, gen(), {timeout = 60})
      print(ok, e.kind, e.message, gen())]], nil, nil, STOP_1S)
    assert.are.equal(3, status, err)
    assert.are.equal("first\ntrue\nfalse\tcancelled\ttask 'hot' was cancelled while it ran\tnil\n",
                     out)
  end)

  it("makes crayrun refuse a CRAY_STOP_TIMEOUT that is not seconds >= 0", function()
    for _, bad in ipairs{"x", "-1", "nan", "''"} do
      local status, _, err = run_clean([[print(1)]], nil, nil, "CRAY_STOP_TIMEOUT=" .. bad)
      assert.are.equal(2, status, err)
      assert.matches("CRAY_STOP_TIMEOUT must be a number of seconds >= 0, or inf %(got '", err)
    end
  end)
end)

describe("os.exit", function()
  it("in the driver shuts cray down first and keeps the status", function()
    local status, out, err, left = run_clean(SPILL .. [[
      nap.remote()
      print("bye")
      io.stdout:flush()
      os.exit(7)]])
    assert.are.equal(7, status, err)
    assert.are.equal("bye\n", out)
    assert.matches("warn driver: 1 task and 0 actor calls still queued or running were cancelled",
                   err, 1, true)
    assert.are.equal("", left)
  end)

  it("inside a task fails that task with invalid_argument; the program goes on", function()
    local status, out, err, left = run_clean(SPILL .. [[
      local quit = cray.remote(function() os.exit(5) end)
      local ok, e = pcall(cray.get, quit.remote())
      print(ok, e.kind, e.cause and e.cause.kind)
      print(e.cause.message:match("os%.exit: .*"))]])
    assert.are.equal(0, status, err)
    assert.are.equal("false\ttask_error\tinvalid_argument\n"
                     .. "os.exit: cannot be called inside a task or an actor; raise an error "
                     .. "or return, and let the driver decide\n", out)
    assert.are.equal("", left)
  end)
end)
