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
--
-- A full garbage collection precedes every timed call, off the clock, and another ends it,
-- on the clock: a run pays for collecting the garbage it made (the ObjectRefs it dropped
-- release their objects then), and only that.
--
-- Environment (for bench/run, which passes it on, or for a script run by hand):
--   CRAY_BENCH_QUICK=1   bench.quick is true: scripts pick tiny sizes, the warm-up and the
--                        3 runs are a few milliseconds; checks that scripts work, nothing
--                        more (spec/bench_spec.lua)
--   CRAY_BENCH_RUNS=N    timed runs per metric (default 5, quick 3; at least 3)
--   CRAY_BENCH_FILTER=S  only metrics whose name contains S; the others' set-up is skipped

local ffi = require "ffi"

local M = {}

M.quick = os.getenv("CRAY_BENCH_QUICK") == "1"

local RUNS = math.max(3, tonumber(os.getenv("CRAY_BENCH_RUNS") or "") or M.quick and 3 or 5)
local WARM = M.quick and 0.001 or 0.5
local RUN = M.quick and 0.002 or 1.0
local FILTER = os.getenv("CRAY_BENCH_FILTER") or ""

local formats = {per_second = "%.0f", gb_per_second = "%.3f", bytes = "%.0f", seconds = "%.6f"}

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

-- The median of a list of numbers (the mean of the middle two for an even count).
function M.median(values)
  local v = {}
  for i, x in ipairs(values) do v[i] = x end
  table.sort(v)
  local h = math.floor(#v / 2)
  return #v % 2 == 1 and v[h + 1] or (v[h] + v[h + 1]) / 2
end

local function check(name, unit)
  if type(name) ~= "string" or not name:match("^[%w_]+$") then
    error(("bench: a metric's name is letters, digits and _ (got %s)"):format(tostring(name)), 3)
  end
  if not formats[unit] then
    error(("bench: %s: unknown unit %s"):format(name, tostring(unit)), 3)
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

-- Seconds run(n) takes, the collection of the garbage it made included.
local function timed(run, n)
  collectgarbage()
  local t0 = M.now()
  run(n)
  collectgarbage()
  return M.now() - t0
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
  check(name, unit)
  if not wanted(name) then return end
  local values, n = time_rate(setup(), opts.per_op or 1)
  collectgarbage() -- the set-up's values are garbage now
  report(name, unit, values, (" (%.0f ops a run)"):format(n))
end

function M.measure(name, unit, fn)
  check(name, unit)
  if not wanted(name) then return end
  collectgarbage()
  fn()
  local values = {}
  for i = 1, RUNS do
    collectgarbage()
    values[i] = fn()
    if type(values[i]) ~= "number" then
      error(("bench: %s: the workload returned %s, not its figure"):format(name,
            type(values[i])), 2)
    end
  end
  collectgarbage()
  report(name, unit, values)
end

return M
