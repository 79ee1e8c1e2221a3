local support = require "spec.support"

local function script(body)
  local path = os.tmpname() .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write(body)
  f:close()
  return path
end

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
                         "--stats", "--no-progress", "--objects-at-exit", "-v, --version",
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
