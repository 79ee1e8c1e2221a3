-- bench.lib: the timing protocol every benchmark script shares (docs/performance.md).
--
-- A script registers its metrics in the order they run; each prints one line on stdout,
-- "<metric> <median> <unit>", and its progress on stderr. Scripts print nothing else on
-- stdout (io.stderr:write for anything they have to say):
--
--   local bench = require "bench.lib"          -- scripts run from the repository's root
--   bench.rate("single_client_put_calls", function()
--     -- set-up here runs once and is not timed
--     return function(n) for _ = 1, n do cray.put(0) end end    -- does n operations
--   end)
--   bench.measure("savina_pingpong", "per_second", function()  -- one whole workload
--     local t0 = bench.now() ... return 200000 / (bench.now() - t0)
--   end)
--
-- rate(name, setup [, opts]): setup() returns run(n). A warm-up of about WARM seconds
--   calls run(n) with n doubling from 1 (at least one call) and estimates the rate; then
--   RUNS timed calls of run(n), n sized for about RUN seconds each. Each run's value is
--   per_op * n / seconds; the median is printed. opts.per_op (default 1) is what one
--   operation counts for, as the multiplier of Ray's timeit: 1000 for a batch of 1,000
--   calls, the gigabytes of one big put. opts.unit: "per_second" (default) or
--   "gb_per_second".
-- measure(name, unit, fn): fn() runs one fixed workload and returns its figure, in unit
--   ("per_second", "gb_per_second", "bytes", "seconds"); one warm-up call, then RUNS
--   calls; the median is printed.
-- measure_all(metrics, fn): measure for a workload that yields several figures at once:
--   metrics is a list of {name, unit}, fn() returns one figure for each, in that order.
--   Each wanted metric gets its line; fn does not run when the filter leaves out all.
-- rss(): the resident bytes of this process.
-- make(fn, ...): fn(...)'s one result, fn run by the driver, or by a task when
--   CRAY_BENCH_MAKER=task: actors made there start together on that task's worker
--   instead of going to the workers in turn (docs/architecture.md, "Actors"), and stay
--   there while the task waits for what it sends them, as the worker serves them itself.
-- sink(n): the driver's mailbox for the actors of a workload (Erlang's `Main ! done`): an
--   actor that exits after n one-way `done` calls. Returns its handle and wait(), which
--   returns once the sink has exited, and raises when it cannot (a lost message: the
--   runtime reports the deadlock) or when it died otherwise.
--
-- A full garbage collection precedes every timed call, off the clock, and another ends it,
-- on the clock: a run pays for collecting the garbage it made (the ObjectRefs it dropped
-- release their objects then), and only that: a third collection, with nothing new to
-- free, times what every collection costs for the heap that was there before the run, and
-- that is taken off.
--
-- Environment (for bench/run, which passes it on, or for a script run by hand):
--   CRAY_BENCH_QUICK=1   bench.quick is true: scripts pick tiny sizes, the warm-up and the
--                        3 runs are a few milliseconds; checks that scripts work, nothing
--                        more (spec/bench_spec.lua)
--   CRAY_BENCH_RUNS=N    timed runs per metric (default 5, quick 3; at least 3)
--   CRAY_BENCH_FILTER=S  only metrics whose name contains S; the others' set-up is skipped
--   CRAY_BENCH_MAKER=M   who makes the actors of the scripts that use bench.make:
--                        "driver" (default) or "task"

local ffi = require "ffi"

local M = {}

M.quick = os.getenv("CRAY_BENCH_QUICK") == "1"

local RUNS = math.max(3, tonumber(os.getenv("CRAY_BENCH_RUNS") or "") or M.quick and 3 or 5)
local WARM = M.quick and 0.001 or 0.5
local RUN = M.quick and 0.002 or 1.0
local FILTER = os.getenv("CRAY_BENCH_FILTER") or ""

local formats = {per_second = "%.0f", gb_per_second = "%.3f", bytes = "%.0f", seconds = "%.6f",
                 us = "%.2f"}

pcall(ffi.cdef, [[
  struct timespec { long tv_sec; long tv_nsec; };
  int clock_gettime(int clock, struct timespec *ts);
]])
local ts = ffi.new("struct timespec")
local CLOCK_MONOTONIC = 1

-- Seconds on a monotonic clock.
function M.now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

pcall(ffi.cdef, "long sysconf(int name);")
local PAGE = tonumber(ffi.C.sysconf(30)) -- _SC_PAGESIZE

-- Resident bytes of this process (/proc/self/statm counts pages).
function M.rss()
  local f = assert(io.open("/proc/self/statm"))
  local resident = f:read("*a"):match("^%d+ (%d+)")
  f:close()
  return tonumber(resident) * PAGE
end

-- The median of a list of numbers (the mean of the middle two for an even count).
function M.median(values)
  local v = {}
  for i, x in ipairs(values) do v[i] = x end
  table.sort(v)
  local h = math.floor(#v / 2)
  return #v % 2 == 1 and v[h + 1] or (v[h] + v[h + 1]) / 2
end

-- Raises, `level` calls up from its caller, when a metric cannot have this name or unit.
local function check(name, unit, level)
  if type(name) ~= "string" or not name:match("^[%w_]+$") then
    error(("bench: a metric's name is letters, digits and _ (got %s)"):format(tostring(name)),
          level + 1)
  end
  if not formats[unit] then
    error(("bench: %s: unknown unit %s"):format(name, tostring(unit)), level + 1)
  end
end

local function wanted(name)
  return name:find(FILTER, 1, true) ~= nil
end

-- Prints the median of `values` on stdout and every value on stderr.
local function report(name, unit, values, note)
  local shown = {}
  for i, x in ipairs(values) do shown[i] = ("%.4g"):format(x) end
  local median = M.median(values)
  io.stderr:write(("  %-46s %s -> %.4g %s%s\n"):format(name, table.concat(shown, " "),
                                                    median, unit, note or ""))
  io.stdout:write(("%s " .. formats[unit] .. " %s\n"):format(name, median, unit))
  io.stdout:flush()
end

-- Seconds run(n) takes, the collection of the garbage it made included. A full collection
-- also marks and sweeps what the heap held before the run (a benchmark's live set): that
-- part, the time of a collection right after with no new garbage, is taken off.
local function timed(run, n)
  collectgarbage()
  collectgarbage() -- userdata finalized by the first are freed by the second
  local t0 = M.now()
  run(n)
  collectgarbage()
  local t1 = M.now()
  collectgarbage()
  return math.max(t1 - t0 - (M.now() - t1), 1e-9)
end

-- Warms run up, sizes n from the rate it reached, and times RUNS calls of run(n).
local function time_rate(run, per_op)
  local n, ops, spent = 1, 0, 0
  while true do
    local dt = timed(run, n)
    ops, spent = ops + n, spent + dt
    if spent >= WARM then break end
    n = n * 2
  end
  n = math.max(1, math.floor(ops / spent * RUN))
  local values = {}
  for i = 1, RUNS do values[i] = per_op * n / timed(run, n) end
  return values, n
end

function M.rate(name, setup, opts)
  opts = opts or {}
  local unit = opts.unit or "per_second"
  check(name, unit, 2)
  if not wanted(name) then return end
  local values, n = time_rate(setup(), opts.per_op or 1)
  collectgarbage() -- the set-up's values are garbage now
  report(name, unit, values, (" (%.0f ops a run)"):format(n))
end

-- measure and measure_all; `level` is where the user's call is, for errors.
local function measure(metrics, fn, level)
  local any = false
  for _, m in ipairs(metrics) do
    check(m[1], m[2], level + 1)
    any = any or wanted(m[1])
  end
  if not any then return end
  collectgarbage()
  fn()
  local values = {}
  for i = 1, #metrics do values[i] = {} end
  for run = 1, RUNS do
    collectgarbage()
    local figures = {fn()}
    for i, m in ipairs(metrics) do
      if type(figures[i]) ~= "number" then
        error(("bench: %s: the workload returned %s, not its figure"):format(m[1],
              type(figures[i])), level + 1)
      end
      values[i][run] = figures[i]
    end
  end
  collectgarbage()
  for i, m in ipairs(metrics) do
    if wanted(m[1]) then report(m[1], m[2], values[i]) end
  end
end

function M.measure(name, unit, fn)
  measure({{name, unit}}, fn, 2)
end

function M.measure_all(metrics, fn)
  measure(metrics, fn, 2)
end

local MAKER = os.getenv("CRAY_BENCH_MAKER") or "driver"
if MAKER ~= "driver" and MAKER ~= "task" then
  error(("bench: CRAY_BENCH_MAKER must be 'driver' or 'task' (got '%s')"):format(MAKER), 0)
end

function M.make(fn, ...)
  if MAKER == "driver" then return fn(...) end
  local cray = require "cray"
  return cray.get(cray.remote(fn).remote(...))
end

local Sink

function M.sink(n)
  local cray = require "cray"
  Sink = Sink or cray.actor{
    init = function(self, left) self.left = left end,
    done = function(self)
      self.left = self.left - 1
      if self.left == 0 then cray.exit_actor() end
    end,
  }
  local sink = Sink.remote(n)
  local ended = cray.monitor(sink)
  return sink, function()
    local ok, down = pcall(cray.get, ended)
    if not ok or down.reason ~= "exited" then
      error(("bench: the workload did not finish: %s"):format(ok and down.reason
            or tostring(down)), 2)
    end
  end
end

return M
