-- Isolation between tasks in one worker state: a task or actor call that allocates past
-- its share of the heap (task_memory, --task-memory; half of worker_memory by default)
-- fails alone with out_of_memory; the state, and every actor and task in it, go on.
local support = require "spec.support"
local cray

local Counter = {
  init = function(self, n) self.n = n end,
  incr = function(self) self.n = self.n + 1; return self.n end,
  hog = function(self)
    self.kept = {}
    for i = 1, 1e8 do self.kept[i] = {i} end
  end,
}

local function hog()
  local t = {}
  for i = 1, 1e8 do t[i] = {i} end
  return #t
end

describe("task isolation", function()
  it("fails a hog alone: two actors on its worker keep their counts", function()
    cray = support.fresh({workers = 1, worker_memory = "64M"})
    local A = cray.actor(Counter)
    local a, b = A.remote(10), A.remote(20)
    assert.are.same({11, 21}, cray.get({a.incr.remote(), b.incr.remote()}))
    local e = support.error_of(cray.get, cray.remote(hog, {name = "hog"}).remote())
    assert.are.equal("out_of_memory", e.kind)
    assert.matches("task 'hog' used more than its share of worker 0's Lua heap " ..
                   "%(task_memory = 33554432 bytes, %-%-task%-memory%)", e.message)
    assert.are.same({12, 22}, cray.get({a.incr.remote(), b.incr.remote()}))
  end)

  it("fails an actor's hogging call alone: the actor and its neighbours go on", function()
    cray = support.fresh({workers = 1, worker_memory = "64M"})
    local A = cray.actor(Counter)
    local a, greedy = A.remote(1), A.remote(100)
    local e = support.error_of(cray.get, greedy.hog.remote())
    assert.are.equal("out_of_memory", e.kind)
    assert.matches("used more than its share", e.message)
    assert.are.same({2, 101}, cray.get({a.incr.remote(), greedy.incr.remote()}))
  end)

  it("gives each task its share again: hogs one after another all fail alone", function()
    cray = support.fresh({workers = 1, worker_memory = "64M", task_memory = "8M"})
    local a = cray.actor(Counter).remote(0)
    local h = cray.remote(hog)
    for i = 1, 5 do
      assert.matches("task_memory = 8388608 bytes", support.error_of(cray.get, h.remote()).message)
      assert.are.equal(i, cray.get(a.incr.remote()))
    end
  end)

  it("charges a task for what it keeps, not for what it makes and drops", function()
    cray = support.fresh({workers = 1, worker_memory = "64M", task_memory = "4M"})
    local churn = cray.remote(function()
      local n = 0
      for i = 1, 2e5 do n = n + #(("x"):rep(100) .. i) end -- 20 MB made, little kept
      return n
    end)
    assert.is_true(cray.get(churn.remote()) > 2e7)
  end)

  it("rebuilds the state only when the state itself passes worker_memory", function()
    cray = support.fresh({workers = 1, worker_memory = "64M", task_memory = "64M"})
    local e = support.error_of(cray.get, cray.remote(hog, {name = "hog", max_retries = 0}).remote())
    assert.are.equal("out_of_memory", e.kind)
    assert.matches("task 'hog' was lost: worker 0's Lua state ran out of memory", e.message)
  end)

  it("takes task_memory as a size, and refuses a bad one naming it", function()
    cray = support.fresh({workers = 1, task_memory = "1M"})
    local e = support.error_of(support.fresh, {task_memory = "lots"})
    assert.are.equal("invalid_argument", e.kind)
    assert.matches("task_memory", e.message)
  end)
end)
