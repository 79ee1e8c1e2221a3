-- Actors through the public API: the actor workloads of Ray's `ray microbenchmark`
-- (python/ray/_private/ray_perf.py), under Ray's names, then actors at scale. Every method
-- is Ray's small_value: it returns the string "ok".
--   build/crayrun bench/actors.lua       (from the repository's root; bench/run runs it)
local bench = require "bench.lib"
local cray = require "cray"

local Actor = cray.actor{
  small_value = function() return "ok" end,
  small_value_arg = function() return "ok" end,
}

-- Ray's Client: an actor that calls its servers and waits for them.
local Client = cray.actor{
  init = function(self, servers) self.servers = servers end,
  small_value_batch = function(self, n)
    local refs = {}
    for _, s in ipairs(self.servers) do
      for _ = 1, n do refs[#refs + 1] = s.small_value.remote() end
    end
    cray.get(refs)
  end,
  small_value_batch_arg = function(self, n)
    local x = cray.put(0)
    local refs = {}
    for _, s in ipairs(self.servers) do
      for _ = 1, n do refs[#refs + 1] = s.small_value_arg.remote(x) end
    end
    cray.get(refs)
  end,
}

local function actors(n)
  local list = {}
  for i = 1, n do list[i] = Actor.remote() end
  return list
end

-- Ray sizes its n:n and 1:n workloads by multiprocessing.cpu_count() // 2; our CPUs are
-- the workers.
local n_cpu = math.max(1, math.floor(cray.stats().workers / 2))

-- ray.get(a.small_value.remote())
bench.rate("1_1_actor_calls_sync", function()
  local a = Actor.remote()
  return function(n)
    for _ = 1, n do cray.get(a.small_value.remote()) end
  end
end)

-- ray.get([a.small_value.remote() for _ in range(1000)]), counted as 1,000; the second with
-- a = Actor.options(max_concurrency=16).remote()
local function calls_async(a)
  local refs = {}
  return function(n)
    for _ = 1, n do
      for i = 1, 1000 do refs[i] = a.small_value.remote() end
      cray.get(refs)
    end
  end
end
bench.rate("1_1_actor_calls_async", function()
  return calls_async(Actor.remote())
end, {per_op = 1000})
bench.rate("1_1_actor_calls_concurrent", function()
  return calls_async(Actor.options{max_concurrency = 16}.remote())
end, {per_op = 1000})

-- One client actor calls n_cpu actors 5,000 times each and gets the results:
-- ray.get(client.small_value_batch.remote(n)), counted as n * n_cpu.
local n = bench.quick and 100 or 5000
bench.rate("1_n_actor_calls_async", function()
  local client = Client.remote(actors(n_cpu))
  return function(runs)
    for _ = 1, runs do cray.get(client.small_value_batch.remote(n)) end
  end
end, {per_op = n * n_cpu})

-- 4 tasks, each calling the n_cpu actors 5,000 times in turn and getting the results:
-- ray.get([work.remote(a) for _ in range(m)]), counted as m * n.
local m = 4
local work = cray.remote(function(servers, calls)
  local refs = {}
  for i = 1, calls do refs[i] = servers[(i - 1) % #servers + 1].small_value.remote() end
  cray.get(refs)
end)
bench.rate("n_n_actor_calls_async", function()
  local servers = actors(n_cpu)
  local refs = {}
  return function(runs)
    for _ = 1, runs do
      for i = 1, m do refs[i] = work.remote(servers, n) end
      cray.get(refs)
    end
  end
end, {per_op = m * n})

-- n_cpu clients, each with its own actor, each calling it 1,000 times with an argument (a
-- ref of cray.put(0), resolved before each call), counted as 1,000 * n_cpu.
local n_arg = bench.quick and 100 or 1000
bench.rate("n_n_actor_calls_with_arg_async", function()
  local clients = {}
  for i, a in ipairs(actors(n_cpu)) do clients[i] = Client.remote({a}) end
  local refs = {}
  return function(runs)
    for _ = 1, runs do
      for i, c in ipairs(clients) do refs[i] = c.small_value_batch_arg.remote(n_arg) end
      cray.get(refs)
    end
  end
end, {per_op = n_arg * n_cpu})

-- Actors at scale: spawn N actors, call each once, get all (actors a second); then, with
-- all N alive and idle, the resident memory the process has grown by since before the
-- first of these runs, divided by N (bytes an actor, its handle in the driver included).

local N = bench.quick and 1000 or 1000000
local before
bench.measure_all({{"actor_creation_per_second", "per_second"}, {"actor_bytes", "bytes"}},
                  function()
  before = before or bench.rss()
  local handles, refs = {}, {}
  local t0 = bench.now()
  for i = 1, N do
    local a = Actor.remote()
    handles[i], refs[i] = a, a.small_value.remote()
  end
  local results = cray.get(refs)
  local seconds = bench.now() - t0
  for i = 1, N do
    if results[i] ~= "ok" then error(("actor %d answered %s"):format(i, tostring(results[i]))) end
  end
  refs, results = nil, nil
  collectgarbage()
  return N / seconds, (bench.rss() - before) / #handles
end)
