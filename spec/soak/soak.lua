-- soak.lua: a mixed load for a given time, then an account of every ref it made.
--
--   crayrun spec/soak/soak.lua SECONDS [SEED]      (make soak SOAK_SECONDS=60)
--
-- It starts its own runtime: two workers, a 4 MiB store and a 64 MiB heap per worker.
-- Rounds of: puts and gets of 1 byte to 2 MiB (the last 32 puts kept and read again later,
-- past the budget, so objects spill and come back), nested tasks, tasks that take big refs, tasks that raise, sleeping tasks cancelled
-- at random, calls to actors with restarts that are killed (restarted or not) at random,
-- and now and then a task that allocates past the worker's heap limit. Every ref has an
-- expectation: the right value, or a failure of a kind its story allows. Each is then
-- read with a timeout: none may hang, none may be wrong. The last line is
--   soak: N refs in R rounds: F finished, E failed as expected, C cancelled; H hung, W wrong (...)
-- and crayrun exits 1 (an uncaught error) when H or W is not 0.
local seconds = tonumber(arg[1]) or 60
local seed = tonumber(arg[2]) or os.time()
math.randomseed(seed)
local HANG = 120 -- seconds a ref may take once its round has been sent
cray.shutdown()
cray.init{workers = 2, memory = "4M", worker_memory = "64M"}

-- A string of n bytes whose bytes depend on its tag.
local function blob(n, tag)
  local unit = string.char(65 + tag % 26) .. string.char(97 + (tag * 7) % 26)
  return unit:rep(math.ceil(n / 2)):sub(1, n)
end

local function size()
  local r = math.random()
  if r < 0.5 then return math.random(1, 256) end
  if r < 0.85 then return math.random(257, 64 * 1024) end
  return math.random(64 * 1024, 2 * 1024 * 1024)
end

-- A nested task: each level submits the next and adds one to what it returns.
local nest
nest = cray.remote(function(n, self)
  if n == 0 then return 1 end
  return cray.get(self.remote(n - 1, self)) + 1
end)
local length = cray.remote(function(s, tag) return #s, s:sub(1, 2) end)
local raise = cray.remote(function(msg) error(msg) end)
local nap = cray.remote(function(s, v) cray.sleep(s); return v end)
local hog = cray.remote(function()
  local t = {}
  for i = 1, 1e9 do t[i] = ("x"):rep(64) .. i end
  return #t
end, {max_retries = 0})

local Counter = cray.actor({
  __name = "Counter",
  init = function(self) self.n = 0 end,
  incr = function(self) self.n = self.n + 1; return self.n end,
  nap = function(self, s) cray.sleep(s); self.n = self.n + 1; return self.n end,
}, {max_restarts = -1, max_concurrency = 2})

-- Expectations: check(ok, ...) says whether what get gave is right for this ref.
local refs, stories = {}, {}
local function expect(ref, story, check) refs[#refs + 1] = ref; stories[#stories + 1] = {story, check} end

local function value(pred) return function(ok, ...) return ok and pred(...) end end
local function fails(kinds)
  return function(ok, err)
    return not ok and cray.is_error(err) and kinds[err.kind] ~= nil
  end
end
local function either(a, b) return function(...) return a(...) or b(...) end end

local counts = {finished = 0, failed = 0, cancelled = 0, hung = 0, wrong = 0}
local function pack(...) return {n = select("#", ...), ...} end
local function account(ref, story, check)
  local r = pack(pcall(cray.get, ref, {timeout = HANG}))
  if not r[1] and cray.is_error(r[2]) and r[2].kind == "timeout" then
    counts.hung = counts.hung + 1
    io.stderr:write("soak: hung: ", story, "\n")
  elseif not check(unpack(r, 1, r.n)) then
    counts.wrong = counts.wrong + 1
    io.stderr:write("soak: wrong: ", story, ": ", tostring(r[2]), "\n")
  elseif r[1] then
    counts.finished = counts.finished + 1
  elseif r[2].kind == "cancelled" then
    counts.cancelled = counts.cancelled + 1
  else
    counts.failed = counts.failed + 1
  end
end

local rounds, total = 0, 0
local stop = os.time() + seconds
local actors, kept, nkept = {}, {}, 0
while os.time() < stop do
  rounds = rounds + 1
  refs, stories = {}, {}
  -- Puts of every size; gets of some of them at once, the rest when accounted.
  for i = 1, 6 do
    local n, tag = size(), rounds * 10 + i
    local r = cray.put(blob(n, tag))
    local check = value(function(s) return s == blob(n, tag) end)
    expect(r, ("put of %d bytes"):format(n), check)
    nkept = nkept + 1
    kept[(nkept - 1) % 32 + 1] = {r, ("put of %d bytes, read again"):format(n), check}
    if i % 2 == 0 then
      expect(length.remote(r, tag), ("length of a %d-byte ref"):format(n),
             value(function(len, head) return len == n and head == blob(2, tag):sub(1, n) end))
    end
  end
  for _ = 1, 2 do
    local k = kept[math.random(#kept)]
    expect(k[1], k[2], k[3])
  end
  -- Nested tasks.
  local d = math.random(1, 6)
  expect(nest.remote(d, nest), ("nest %d"):format(d), value(function(v) return v == d + 1 end))
  -- A task that raises.
  expect(raise.remote("boom " .. rounds), "raise", fails({task_error = true}))
  -- Sleeping tasks, some cancelled.
  for i = 1, 3 do
    local r = nap.remote(math.random() * 0.05, i)
    local story = "nap"
    if math.random() < 0.5 then
      cray.cancel(r)
      story = "nap, cancelled"
    end
    expect(r, story, either(value(function(v) return v == i end), fails({cancelled = true})))
  end
  -- Actors: calls, then at random a kill that restarts or ends the actor. A call may fail
  -- only when its actor was killed or restarted, or when the round's hog took the state.
  local hogging = rounds % 10 == 0
  if #actors < 3 or math.random() < 0.2 then actors[#actors + 1] = Counter.remote() end
  local alive = {}
  for _, h in ipairs(actors) do
    local calls = {}
    for i = 1, 4 do
      calls[i] = (i % 2 == 0) and h.nap.remote(math.random() * 0.02) or h.incr.remote()
    end
    local fate = math.random()
    fate = fate < 0.15 and "restarted" or fate < 0.2 and "killed" or "kept"
    if fate == "restarted" then
      cray.kill(h, {no_restart = false})
    elseif fate == "killed" then
      cray.kill(h)
    end
    if fate ~= "killed" then alive[#alive + 1] = h end
    local allowed = (fate ~= "kept" or hogging) and {actor_died = true, out_of_memory = true}
                    or {}
    for i, c in ipairs(calls) do
      expect(c, ("actor call %d (%s)"):format(i, fate),
             either(value(function(v) return type(v) == "number" and v >= 1 and v % 1 == 0 end),
                    fails(allowed)))
    end
  end
  actors = alive
  -- Now and then, a task past the worker heap limit.
  if hogging then
    expect(hog.remote(), "hog", fails({out_of_memory = true}))
  end
  for i, r in ipairs(refs) do account(r, stories[i][1], stories[i][2]) end
  total = total + #refs
end

local store = cray.stats().store
print(("soak: %d refs in %d rounds: %d finished, %d failed as expected, %d cancelled; " ..
       "%d hung, %d wrong (seed %d, %d objects read back from disk)"):format(total, rounds,
       counts.finished, counts.failed, counts.cancelled, counts.hung, counts.wrong, seed,
       store.restored_objects))
-- An error, not os.exit, so that the runtime shuts down cleanly (the sanitizers look at
-- what is left).
if counts.hung + counts.wrong > 0 then error("soak: refs hung or wrong (above)", 0) end
