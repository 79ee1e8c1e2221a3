-- Across ranks (docs/cluster.md): bench/run runs this under
-- `mpirun -n 3 crayrun -w 1 bench/mpi/cluster.lua`, after bench/mpi_ceiling.c measured
-- what MPI alone does. Rank 0 prints the metrics.
--   mpi_object_transfer_gb_per_second   a 100 MB object made on rank 1, pulled by rank 0
--   mpi_task_roundtrip_seconds          a task placed on rank 1, submitted and got
--   mpi_tasks_async                     1,000 tasks submitted on rank 0, placed on ranks
--                                       0, 1 and 2 in turn, got together (per second)
--   mpi_actor_call_roundtrip_us         a call to an actor on rank 1, got before the next
--   mpi_local_actor_call_us             the same call to an actor on rank 0
local bench = require "bench.lib"
local cray = require "cray"

local SIZE = bench.quick and 1024 * 1024 or 100 * 1024 * 1024

-- A new object on rank 1 each run (not timed), kept in that worker state's global BIG;
-- then, timed, a task hands its ref to rank 0, which pulls the bytes.
local make = cray.remote(function(n)
  local ffi = require "ffi"
  BIG = cray.put(ffi.new("uint8_t[?]", n))
  return true
end).options{node = 1}
local hand = cray.remote(function() return {BIG} end).options{node = 1}
bench.measure("mpi_object_transfer_gb_per_second", "gb_per_second", function()
  cray.get(make.remote(SIZE))
  local t0 = bench.now()
  local box = cray.get(hand.remote())
  local view = cray.get(box[1])
  local dt = bench.now() - t0
  assert(view ~= nil)
  return SIZE / dt / 1e9
end)

local small_value = cray.remote(function() return "ok" end)
local on = {[0] = small_value.options{node = 0}, small_value.options{node = 1},
            small_value.options{node = 2}}

bench.measure("mpi_task_roundtrip_seconds", "seconds", function()
  local n = bench.quick and 10 or 1000
  local t0 = bench.now()
  for _ = 1, n do cray.get(on[1].remote()) end
  return (bench.now() - t0) / n
end)

bench.rate("mpi_tasks_async", function()
  local refs = {}
  return function(n)
    for _ = 1, n do
      for i = 1, 1000 do refs[i] = on[i % 3].remote() end
      cray.get(refs)
    end
  end
end, {per_op = 1000})

-- A synchronous call to an actor on rank 1, one at a time, in microseconds; beside it the
-- same call to an actor on rank 0, the "one local call" of its target (≤ 2 × the raw MPI
-- round trip + one local call).
local Echo = cray.actor{ping = function() return "ok" end}
local function call_roundtrip(a)
  return function()
    local ping = a.ping
    local n = bench.quick and 10 or 2000
    cray.get(ping.remote())
    local t0 = bench.now()
    for _ = 1, n do cray.get(ping.remote()) end
    return (bench.now() - t0) / n * 1e6
  end
end
bench.measure("mpi_actor_call_roundtrip_us", "us", call_roundtrip(Echo.options{node = 1}.remote()))
bench.measure("mpi_local_actor_call_us", "us", call_roundtrip(Echo.remote()))
