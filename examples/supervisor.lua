-- A supervision tree in the Erlang style: a supervisor starts a cache and a worker that
-- uses it, and starts them again when they die.
--   crayrun examples/supervisor.lua
local cray = require "cray"
local util = require "cray.util"

local Cache = cray.actor{
  init = function(self) self.data = {} end,
  set = function(self, k, v) self.data[k] = v end,
  get = function(self, k) return self.data[k] end,
}

local Worker = cray.actor{
  init = function(self, factor) self.factor = factor end,
  work = function(self, x)
    if x < 0 then error("negative input") end
    local cache = cray.get_actor("cache")
    cray.get(cache.set.remote(x, x * self.factor))
    return x * self.factor
  end,
}

local sup = util.Supervisor{
  strategy = "one_for_one",
  max_restarts = 5,
  period = 10,
  children = {
    {name = "cache", class = Cache},
    {name = "worker", class = Worker, args = {10}, options = {restart_on_error = true,
                                                             max_restarts = 3}},
  },
}

local worker = sup:child("worker")
print("work(4) = " .. cray.get(worker.work.remote(4)))

-- The worker restarts itself after an error (restart_on_error): same handle, fresh state.
local ok, err = pcall(cray.get, worker.work.remote(-1))
print("work(-1) failed: " .. tostring(not ok and err.kind))
print("work(5) = " .. cray.get(worker.work.remote(5)))

-- Killed, the cache is started again by the supervisor, under the same name.
local old_cache = sup:child("cache")
local down = cray.monitor(old_cache)
cray.kill(old_cache)
print("cache died: " .. cray.get(down).reason)
local cache
repeat
  cache = cray.get_actor("cache", {missing_ok = true})
  if cache == old_cache then cache = nil end
  if not cache then cray.sleep(0.01) end
until cache
print("the new cache starts empty: " .. tostring(cray.get(cache.get.remote(4)) == nil))
print("work(6) = " .. cray.get(worker.work.remote(6)))
print("the worker found the new cache by name: " .. cray.get(cache.get.remote(6)))
print("restarts by the supervisor: " .. sup:restart_count())
sup:stop()
print("stopped: " .. cray.get(sup:monitor()).reason)
