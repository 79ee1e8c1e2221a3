local support = require "spec.support"
local cray = support.fresh({workers = 2})

describe("cray.exec", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  it("returns the output, the exit status and the error output", function()
    local out, status, err = cray.exec{"sh", "-c", "echo out; echo err >&2; exit 3"}
    assert.are.equal("out\n", out)
    assert.are.equal(3, status)
    assert.are.equal("err\n", err)
  end)

  it("feeds the input, and runs in cwd with env", function()
    assert.are.equal("a\nb\nc\n", (cray.exec{"sort", input = "c\na\nb\n"}))
    assert.are.equal("/tmp\n", (cray.exec{"pwd", cwd = "/tmp"}))
    local out = cray.exec{"sh", "-c", "echo $GREETING-$N", env = {GREETING = "hi", N = 3}}
    assert.are.equal("hi-3\n", out)
  end)

  it("passes large input and output through", function()
    local big = string.rep("0123456789abcdef", 65536) -- 1 MiB
    local out, status = cray.exec{"cat", input = big}
    assert.are.equal(0, status)
    assert.are.equal(#big, #out)
    assert.are.equal(big, out)
  end)

  it("runs inside tasks and actors without holding a worker", function()
    cray = support.fresh({workers = 1})
    local slow = cray.remote(function() return (cray.exec{"sh", "-c", "sleep 0.3; echo slept"}) end)
    local r = slow.remote()
    local quick = cray.remote(function(x) return x + 1 end)
    assert.are.equal(2, cray.get(quick.remote(1))) -- while the other waits for its child
    assert.are.equal("slept\n", cray.get(r))
    local Shell = cray.actor{ run = function(self, s) return (cray.exec{"sh", "-c", s}) end }
    assert.are.equal("x\n", cray.get(Shell.remote().run.remote("echo x")))
  end)

  it("kills the process at the timeout and raises a timeout", function()
    local e = support.error_of(cray.exec, {"sleep", "10", timeout = 0.1})
    assert.are.equal("timeout", e.kind)
    assert.matches("cray.exec: 'sleep' timed out and was killed", e.message, 1, true)
  end)

  it("reports a signal as 128 + its number", function()
    local _, status = cray.exec{"sh", "-c", "kill -9 $$"}
    assert.are.equal(137, status)
  end)

  it("names the program it cannot run", function()
    local e = support.error_of(cray.exec, {"no-such-program-here"})
    assert.are.equal("io_error", e.kind)
    assert.matches("cannot run 'no-such-program-here': no such file or directory",
                   e.message, 1, true)
  end)

  it("rejects bad arguments", function()
    assert.matches("cray.exec: expects {program",
                   support.error_of(cray.exec, "ls").message, 1, true)
    assert.matches("argument 2 must be a string",
                   support.error_of(cray.exec, {"ls", 5}).message, 1, true)
    assert.matches("unknown option 'stdin'",
                   support.error_of(cray.exec, {"ls", stdin = "x"}).message, 1, true)
    assert.matches("option 'timeout' must be a number of seconds >= 0",
                   support.error_of(cray.exec, {"ls", timeout = -1}).message, 1, true)
    assert.matches("env must map names to strings",
                   support.error_of(cray.exec, {"ls", env = {1, 2}}).message, 1, true)
  end)
end)
