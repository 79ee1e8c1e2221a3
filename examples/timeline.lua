-- A small pipeline to look at in a timeline (docs/observability.md):
--   crayrun -w 3 -m 1M --timeline run.json examples/timeline.lua
-- then open run.json in ui.perfetto.dev. Loads make big values (past the 1 MiB budget, so
-- some are spilled and read back), parses wait for them, an actor sums the counts, and a
-- flaky task fails, is retried, and fails again.
local load = cray.remote(function(i)
  cray.sleep(0.002 * i)                                 -- a wait inside the task
  return string.rep(string.char(96 + i), 300 * 1024)
end).options{name = "load"}

local parse = cray.remote(function(text)
  local lines = 0
  for _ in text:gmatch(("."):rep(512)) do lines = lines + 1 end
  return lines
end).options{name = "parse"}

local Sum = cray.actor{
  __name = "Sum",
  init = function(self) self.total = 0 end,
  add = function(self, n) self.total = self.total + n; return self.total end,
}

local flaky = cray.remote(function() error("the disk is not there") end)
  .options{name = "flaky", max_retries = 1, retry_exceptions = true}

local sum = Sum.remote()
local loads, adds = {}, {}
for i = 1, 6 do loads[i] = load.remote(i) end
for i = 1, 6 do adds[i] = sum.add.remote(parse.remote(loads[i])) end
local ok = pcall(cray.get, flaky.remote())
local totals = cray.get(adds)
-- the loaded values again, read back from disk where they were spilled
local bytes = 0
for i = 1, 6 do bytes = bytes + #cray.get(loads[i]) end
print(("total %d, %d bytes loaded, flaky %s"):format(totals[6], bytes, ok and "ran" or "failed"))
