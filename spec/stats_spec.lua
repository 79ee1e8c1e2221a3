local support = require "spec.support"
local cray = support.fresh({workers = 2})
local report = require "cray.report"

describe("cray.stats() per function", function()
  it("counts each named function's calls, failures and retries", function()
    local ok = cray.remote(function(x) return x end).options{name = "stats_ok"}
    local bad = cray.remote(function() error("no", 0) end)
      .options{name = "stats_bad", max_retries = 2, retry_exceptions = true}
    local refs = {}
    for i = 1, 25 do refs[i] = ok.remote(i) end
    cray.get(refs)
    assert.is_false(pcall(cray.get, bad.remote()))
    assert.is_false(pcall(cray.get, bad.remote()))
    local f = cray.stats().functions
    assert.are.same({25, 0, 0, 25}, {f.stats_ok.calls, f.stats_ok.failed, f.stats_ok.retries,
                                       f.stats_ok.ran})
    assert.are.same({2, 2, 4, 2}, {f.stats_bad.calls, f.stats_bad.failed, f.stats_bad.retries,
                                     f.stats_bad.ran})
  end)

  it("names an unnamed function by its file and line", function()
    local line = debug.getinfo(1, "l").currentline + 1
    local anon = cray.remote(function() return 1 end)
    cray.get(anon.remote())
    local name = ("%s:%d"):format(debug.getinfo(1, "S").short_src, line)
    assert.are.equal(1, cray.stats().functions[name].calls)
  end)

  it("measures run time: total, mean, p50 and p99 of a sleeping task", function()
    local nap = cray.remote(function() cray.sleep(0.02) end).options{name = "stats_nap"}
    cray.get({nap.remote(), nap.remote(), nap.remote()})
    local f = cray.stats().functions.stats_nap
    assert.are.equal(3, f.ran)
    assert.is_true(f.total >= 0.06 and math.abs(f.mean - f.total / 3) < 1e-9, f.total)
    -- the histogram's buckets are 19% wide: its middle is within that of any value
    assert.is_true(f.p50 >= 0.02 / 1.2 and f.p50 <= f.p99, f.p50)
    assert.is_true(f.queued >= 0)
  end)

  it("counts the time a task waited for a slow argument apart from its time queued", function()
    local slow = cray.remote(function() cray.sleep(0.3) return 1 end).options{name = "stats_slow"}
    local after = cray.remote(function(x) return x end).options{name = "stats_after"}
    assert.are.equal(1, cray.get(after.remote(slow.remote())))
    local f = cray.stats().functions.stats_after
    assert.are.equal(1, f.ran)
    -- it was submitted just after `slow`, which slept 0.3 s before its result came
    assert.is_true(f.deps >= 0.2, f.deps)
    assert.is_true(f.queued >= 0, f.queued)
  end)

  it("counts no time waiting for arguments that were there or absent", function()
    local ready = cray.put(1)
    local plain = cray.remote(function(x) return x end).options{name = "stats_plain"}
    cray.get({plain.remote(ready), plain.remote(2)})
    local f = cray.stats().functions.stats_plain
    assert.are.same({2, 0}, {f.ran, f.deps})
  end)

  it("counts an actor call's wait for a slow argument", function()
    local slow = cray.remote(function() cray.sleep(0.3) return 1 end)
    local Echo = cray.actor{__name = "StatsEcho", echo = function(_, x) return x end}
    local e = Echo.remote()
    cray.get(e.echo.remote(0))
    assert.are.equal(1, cray.get(e.echo.remote(slow.remote())))
    local f = cray.stats().functions["StatsEcho.echo"]
    assert.are.equal(2, f.ran)
    assert.is_true(f.deps >= 0.2, f.deps)
  end)

  it("counts a task that never ran as a failed call with no run time", function()
    local never = cray.remote(function() return 1 end).options{name = "stats_never"}
    local gate = cray.remote(function() error("gate", 0) end).options{name = "stats_gate"}
    assert.is_false(pcall(cray.get, never.remote(gate.remote())))
    local f = cray.stats().functions.stats_never
    assert.are.same({1, 1, 0, 0}, {f.calls, f.failed, f.ran, f.total})
  end)

  it("names actor calls Class.method and counts actors' lives", function()
    local before = cray.stats().actors
    local Tally = cray.actor{__name = "StatsTally", init = function(self) self.n = 0 end,
                             add = function(self) self.n = self.n + 1; return self.n end}
    local t = Tally.remote()
    for _ = 1, 4 do cray.get(t.add.remote()) end
    local s = cray.stats()
    assert.are.equal(4, s.functions["StatsTally.add"].calls)
    assert.are.equal(1, s.functions["StatsTally.init"].calls)
    assert.are.equal(before.created + 1, s.actors.created)
    cray.kill(t)
    local deadline = os.time() + 5
    while cray.stats().actors.died == before.died and os.time() < deadline do cray.sleep(0.01) end
    assert.are.equal(before.died + 1, cray.stats().actors.died)
  end)

  it("counts the calls of methods called in turn each under its own name", function()
    -- More names than a worker keeps at hand, called round and round from one actor.
    local methods = {}
    for i = 1, 40 do methods["m" .. i] = function(self) return i end end
    methods.__name = "StatsTurns"
    local h = cray.actor(methods).remote()
    local refs = {}
    for round = 1, 5 do
      for i = 1, 40 do refs[#refs + 1] = h["m" .. i].remote() end
    end
    local got = cray.get(refs)
    for k = 1, #refs do assert.are.equal((k - 1) % 40 + 1, got[k]) end
    local f = cray.stats().functions
    for i = 1, 40 do assert.are.equal(5, f["StatsTurns.m" .. i].calls) end
  end)

  it("keeps the store's peak and each worker's busy fraction", function()
    local big = cray.put(string.rep("x", 2 * 2^20))
    local s = cray.stats()
    assert.is_true(s.store.peak_bytes >= 2 * 2^20, s.store.peak_bytes)
    assert.are.equal(2, #s.busy)
    for _, b in ipairs(s.busy) do assert.is_true(b >= 0 and b <= 1, b) end
    assert.is_true(s.elapsed > 0)
    big = nil
  end)

  it("counts a call's run, up to its end, in its worker's busy time", function()
    -- an actor's call runs on its worker (a task may run in the driver's get, uncounted)
    local Spinner = cray.actor{__name = "StatsSpinner", spin = function(_, seconds)
      local ffi = require "ffi"
      pcall(ffi.cdef, [[
        struct stats_timespec { long tv_sec; long tv_nsec; };
        int clock_gettime(int clock, struct stats_timespec *ts);
      ]])
      local ts = ffi.new("struct stats_timespec")
      local function now()
        ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
        return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
      end
      local t0 = now()
      while now() - t0 < seconds do end
      return now() - t0
    end}
    local spinner = Spinner.remote()
    local function busy_seconds(s)
      local sum = 0
      for _, b in ipairs(s.busy) do sum = sum + b * s.elapsed end
      return sum
    end
    local before = busy_seconds(cray.stats())
    local spent = cray.get(spinner.spin.remote(0.1))
    local added = busy_seconds(cray.stats()) - before
    -- the stamps' rate is measured against the clock: allow it 5 %
    assert.is_true(spent >= 0.1 and added >= spent * 0.95, ("%g of %g"):format(added, spent))
  end)
end)

describe("cray.report", function()
  it("writes sizes in binary units", function()
    assert.are.equal("512 B", report.bytes(512))
    assert.are.equal("1.5 KiB", report.bytes(1536))
    assert.are.equal("3.0 MiB", report.bytes(3 * 2^20))
    assert.are.equal("2.0 GiB", report.bytes(2 * 2^30))
  end)

  it("writes times in the unit that reads best", function()
    assert.are.equal("1.50s", report.seconds(1.5))
    assert.are.equal("2.00ms", report.seconds(0.002))
    assert.are.equal("3.0us", report.seconds(3e-6))
  end)

  it("formats a row per function, sorted by total time", function()
    local text = report.format(cray.stats())
    assert.matches("functions:\n  name +calls +failed +retries +total +mean +p50 +p99 +queued +deps\n",
                   text)
    assert.is_truthy(text:find("stats_nap", 1, true) < text:find("stats_ok", 1, true))
    assert.matches("\nactors: %d+ created, %d+ alive, %d+ restarted, %d+ died\n", text)
  end)
end)
