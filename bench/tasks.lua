-- Tasks through the public API: the task workloads of Ray's `ray microbenchmark`
-- (python/ray/_private/ray_perf.py), under Ray's names. Every task is Ray's small_value:
-- it returns the string "ok".
--   build/crayrun bench/tasks.lua        (from the repository's root; bench/run runs it)
local bench = require "bench.lib"
local cray = require "cray"

local small_value = cray.remote(function() return "ok" end)

-- ray.get(small_value.remote())
bench.rate("single_client_tasks_sync", function()
  return function(n)
    for _ = 1, n do cray.get(small_value.remote()) end
  end
end)

-- ray.get([small_value.remote() for _ in range(1000)]), counted as 1,000
bench.rate("single_client_tasks_async", function()
  local refs = {}
  return function(n)
    for _ = 1, n do
      for i = 1, 1000 do refs[i] = small_value.remote() end
      cray.get(refs)
    end
  end
end, {per_op = 1000})

-- The same with the timeline recording (cray.timeline), in the same run: the difference
-- is what recording costs. Each timed call starts recording and stops it at its end, so
-- the metrics after this one run without it.
bench.rate("single_client_tasks_async_traced", function()
  local refs = {}
  return function(n)
    cray.timeline()
    for _ = 1, n do
      for i = 1, 1000 do refs[i] = small_value.remote() end
      cray.get(refs)
    end
    cray.timeline(false)
  end
end, {per_op = 1000})

-- 4 clients, each submitting 10,000 tasks and getting their results, counted as 40,000.
-- Ray's clients are actors; ours are tasks, which submit and wait the same way.
local clients, per_client = 4, bench.quick and 100 or 10000
local client = cray.remote(function(n)
  local refs = {}
  for i = 1, n do refs[i] = small_value.remote() end
  cray.get(refs)
  return n
end)
bench.rate("multi_client_tasks_async", function()
  local refs = {}
  return function(n)
    for _ = 1, n do
      for i = 1, clients do refs[i] = client.remote(per_client) end
      cray.get(refs)
    end
  end
end, {per_op = clients * per_client})
