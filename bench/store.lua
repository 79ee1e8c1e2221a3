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

-- Freeing in bulk: 4,000,000 objects, each held only by its ObjectRef, are dropped and
-- collected (objects freed a second, the collection included). Before the drop, the
-- resident memory the process grew by since before the first run, over 4,000,000, is an
-- object's footprint (value, entry and ObjectRef, and its slot in the table). It runs
-- before the metrics at scale below: memory they free stays with the process and would
-- serve these objects unseen. After the collection, the seconds for the next 1,000 tasks
-- (submitted, then got): new work is not held up by the freeing.
local LIVE = bench.quick and 4000 or 4000000
local table_new = require "table.new"

local small_value = cray.remote(function() return "ok" end)
local before
bench.measure_all({{"free_objects_per_second", "per_second"}, {"object_bytes", "bytes"},
                   {"tasks_1k_after_free_seconds", "seconds"}}, function()
  collectgarbage()
  before = before or bench.rss()
  local refs = table_new(LIVE, 0)
  for i = 1, LIVE do refs[i] = cray.put(i) end
  collectgarbage()
  local bytes = (bench.rss() - before) / LIVE
  local t0 = bench.now()
  refs = nil
  collectgarbage()
  local t1 = bench.now()
  local tasks = {}
  for i = 1, 1000 do tasks[i] = small_value.remote() end
  cray.get(tasks)
  return LIVE / (t1 - t0), bytes, bench.now() - t1
end)

-- The store at scale (not Ray's): the first two loops above, unchanged, with 4,000,000 more
-- objects alive in the store. Objects that nest their refs keep them alive, so the Lua
-- heap holds none of them while puts run: each put pays the Lua collector for the bytes it
-- stores (bindings/module.c), which then marks whatever the heap holds. The gets read every
-- 7th live object in turn, each get meeting an entry of its own, through refs to those
-- objects made for that metric (a get allocates nothing in Lua).
local live

-- The live set, made once (not timed) and shared by both metrics: an object holding
-- every ref, and one holding every 7th.
local function live_set()
  if not live then
    local refs, sample = table_new(LIVE, 0), table_new(LIVE / 7 + 1, 0)
    for i = 1, LIVE do
      refs[i] = cray.put(i)
      if i % 7 == 1 then sample[#sample + 1] = refs[i] end
    end
    live = {all = cray.put(refs), sample = cray.put(sample)}
  end
  return live
end

bench.rate("single_client_put_calls_4m_live", function()
  live_set()
  return function(n)
    for _ = 1, n do cray.put(0) end
  end
end)

bench.rate("single_client_get_calls_4m_live", function()
  local sample, j = cray.get(live_set().sample), 1
  local m = #sample
  return function(n)
    for _ = 1, n do
      cray.get(sample[j])
      j = j < m and j + 1 or 1
    end
  end
end)
live = nil

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
