-- The object store through the public API, as a user's script drives it: the put, get and
-- wait workloads of Ray's `ray microbenchmark` (python/ray/_private/ray_perf.py), under
-- Ray's names. docs/performance.md says where ours differ from Ray's and why.
--   build/crayrun bench/store.lua        (from the repository's root; bench/run runs it)
local bench = require "bench.lib"
local cray = require "cray"
local ffi = require "ffi"

-- ray.put(0)
bench.rate("single_client_put_calls", function()
  return function(n)
    for _ = 1, n do cray.put(0) end
  end
end)

-- value = ray.put(0); ray.get(value)
bench.rate("single_client_get_calls", function()
  local ref = cray.put(0)
  return function(n)
    for _ = 1, n do cray.get(ref) end
  end
end)

-- ray.put(np.zeros(100 * 1024 * 1024, dtype=np.int64)): 800 MiB a put. Each put's ref is
-- dropped and collected before the next, as Python's refcount drops Ray's at once.
local words = bench.quick and 2^17 or 100 * 2^20
bench.rate("single_client_put_gigabytes", function()
  local array = ffi.new("int64_t[?]", words)
  return function(n)
    for _ = 1, n do
      cray.put(array)
      collectgarbage()
    end
  end
end, {per_op = words * 8 / 1e9, unit = "gb_per_second"})

-- ray.wait on 1,000 ready refs for all of them. (Ray's loop submits 1,000 tasks and waits
-- for one at a time; that form joins tasks.lua with tasks.)
bench.rate("single_client_wait_1k_refs", function()
  local refs = {}
  for i = 1, 1000 do refs[i] = cray.put(i) end
  local opts = {num_returns = 1000}
  return function(n)
    for _ = 1, n do cray.wait(refs, opts) end
  end
end)

-- ray.get of one object holding 10,000 refs (to objects put with ray.put(1)); the object
-- is made once, outside the clock, and holds the only references to the 10,000.
bench.rate("single_client_get_object_containing_10k_refs", function()
  local refs = {}
  for i = 1, 10000 do refs[i] = cray.put(1) end
  local holder = cray.put(refs)
  return function(n)
    for _ = 1, n do cray.get(holder) end
  end
end)
