local support = require "spec.support"
local cray = support.fresh({workers = 2})
local util = require "cray.util"

local Worker = function()
  return cray.actor{
    init = function(self, id) self.id = id end,
    double = function(self, x) return 2 * x end,
    slow = function(self, x) cray.sleep(x); return x end,
    gated = function(self, gate)
      while not cray.get(gate.is_open.remote()) do cray.sleep(0.002) end
      return "through"
    end,
    id_of = function(self) return self.id end,
  }
end

local function collect(iter)
  local out = {}
  for v in iter do out[#out + 1] = v end
  return out
end

describe("util.ActorPool", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  local function pool_of(n)
    local W, actors = Worker(), {}
    for i = 1, n do actors[i] = W.remote(i) end
    return util.ActorPool(actors), actors
  end

  it("maps values over its actors, results in input order", function()
    local pool = pool_of(3)
    assert.are.same({2, 4, 6, 8, 10, 12, 14},
                    collect(pool:map(function(a, x) return a.double.remote(x) end,
                                     {1, 2, 3, 4, 5, 6, 7})))
    assert.is_false(pool:has_next())
  end)

  it("maps unordered, giving each result once as it finishes", function()
    local pool = pool_of(2)
    local got = collect(pool:map_unordered(function(a, x) return a.slow.remote(x) end,
                                           {0.2, 0, 0.01, 0.02}))
    table.sort(got)
    assert.are.same({0, 0.01, 0.02, 0.2}, got)
  end)

  it("queues submissions past its actors and runs them as actors free up", function()
    local pool = pool_of(1)
    pool:submit(function(a, x) return a.double.remote(x) end, 1)
    pool:submit(function(a, x) return a.double.remote(x) end, 2)
    assert.is_false(pool:has_free())
    assert.are.equal(2, pool:get_next())
    assert.are.equal(4, pool:get_next())
    assert.is_false(pool:has_next())
    assert.is_true(pool:has_free())
  end)

  it("gets the first result to finish, and refuses get_next for a result it skipped", function()
    local gate = cray.actor{
      init = function(self) self.open = false end,
      open_it = function(self) self.open = true end,
      is_open = function(self) return self.open end,
    }.remote()
    local pool = pool_of(2)
    pool:submit(function(a, g) return a.gated.remote(g) end, gate)
    pool:submit(function(a, x) return a.double.remote(x) end, 1)
    assert.are.equal(2, pool:get_next_unordered())
    assert.matches("pool:get_next: the next result in order was taken by get_next_unordered",
                   support.error_of(pool.get_next, pool).message)
    gate.open_it.remote()
    assert.are.equal("through", pool:get_next_unordered())
    assert.is_false(pool:has_next())
  end)

  it("raises timeout when the next result is not ready in time", function()
    local pool = pool_of(1)
    pool:submit(function(a, x) return a.slow.remote(x) end, 0.5)
    local e = support.error_of(pool.get_next, pool, {timeout = 0.01})
    assert.are.equal("timeout", e.kind)
    assert.matches("pool:get_next: no result within 0.01 s", e.message)
    assert.are.equal(0.5, pool:get_next())
  end)

  it("pops idle actors and takes pushed ones", function()
    local pool, actors = pool_of(2)
    local a = pool:pop_idle()
    local b = pool:pop_idle()
    assert.is_nil(pool:pop_idle())
    assert.are.same({1, 2}, (function()
      local ids = {cray.get(a.id_of.remote()), cray.get(b.id_of.remote())}
      table.sort(ids)
      return ids
    end)())
    pool:push(a)
    assert.are.same({2}, collect(pool:map(function(h, x) return h.double.remote(x) end, {1})))
    local e = support.error_of(pool.push, pool, a)
    assert.matches("pool:push: the actor is in the pool already", e.message)
    assert.are.equal(actors[1], actors[1])
  end)

  it("refuses bad actors, functions and calls past the last result", function()
    assert.matches("util.ActorPool: expects an array of actor handles %(got nil%)",
                   support.error_of(util.ActorPool).message)
    assert.matches("util.ActorPool: actors%[1%] is not an actor handle %(got number%)",
                   support.error_of(util.ActorPool, {1}).message)
    local pool = pool_of(1)
    assert.matches("pool:submit: expects a function %(got nil%)",
                   support.error_of(pool.submit, pool, nil, 1).message)
    assert.matches("pool:submit: fn must return the ref of a call %(got number%)",
                   support.error_of(pool.submit, pool, function() return 1 end, 1).message)
    assert.matches("pool:get_next: no more results",
                   support.error_of(pool.get_next, pool).message)
    assert.matches("pool:map: expects an array of values %(got string%)",
                   support.error_of(pool.map, pool, function() end, "x").message)
  end)
end)

describe("util.Queue", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  it("gives items back first in, first out", function()
    local q = util.Queue()
    for i = 1, 5 do q:put(i) end
    assert.are.equal(5, q:size())
    assert.are.same({1, 2, 3, 4, 5}, {q:get(), q:get(), q:get(), q:get(), q:get()})
    assert.is_true(q:empty())
  end)

  it("is bounded by maxsize: put_nowait on a full queue raises full", function()
    local q = util.Queue{maxsize = 2}
    q:put("a")
    q:put_nowait("b")
    assert.is_true(q:full())
    assert.are.equal(2, q.maxsize)
    local e = support.error_of(q.put_nowait, q, "c")
    assert.are.equal("full", e.kind)
    assert.matches("q:put: the queue is full", e.message)
    e = support.error_of(q.put, q, "c", {timeout = 0.02})
    assert.are.equal("full", e.kind)
    assert.matches("q:put: the queue stayed full for 0.02 s", e.message)
    assert.are.equal("a", q:get())
    q:put("c")
    assert.are.same({"b", "c"}, {q:get(), q:get()})
  end)

  it("raises empty from get_nowait, and from get after its timeout", function()
    local q = util.Queue()
    local e = support.error_of(q.get_nowait, q)
    assert.are.equal("empty", e.kind)
    assert.matches("q:get: the queue is empty", e.message)
    e = support.error_of(q.get, q, {timeout = 0.02})
    assert.are.equal("empty", e.kind)
    assert.matches("q:get: the queue stayed empty for 0.02 s", e.message)
  end)

  it("makes a get wait for the put that fills it", function()
    local q = util.Queue()
    local producer = cray.remote(function(queue)
      cray.sleep(0.05)
      queue:put("late")
      return true
    end)
    local done = producer.remote(q)
    assert.are.equal("late", q:get{timeout = 10})
    assert.is_true(cray.get(done))
  end)

  it("makes a put on a full queue wait for the get that frees it", function()
    local q = util.Queue{maxsize = 1}
    q:put(1)
    local producer = cray.remote(function(queue) queue:put(2); return "put" end)
    local done = producer.remote(q)
    assert.are.same({}, (cray.wait({done}, {timeout = 0.05})))
    assert.are.equal(1, q:get())
    assert.are.equal("put", cray.get(done))
    assert.are.equal(2, q:get())
  end)

  it("travels to tasks as a value, and keeps nil and table items", function()
    local q = util.Queue()
    local f = cray.remote(function(queue, n)
      for i = 1, n do queue:put({i = i}) end
      queue:put(false)
    end)
    cray.get(f.remote(q, 3))
    assert.are.same({{i = 1}, {i = 2}, {i = 3}, false}, {q:get(), q:get(), q:get(), q:get()})
  end)

  it("refuses bad options", function()
    assert.matches("util.Queue: option 'maxsize' must be a whole number from 0 to 2147483647 "
                   .. "%(got %-1%)",
                   support.error_of(util.Queue, {maxsize = -1}).message)
    local q = util.Queue()
    assert.matches("q:get: option 'timeout' must be a number of seconds >= 0 %(got \"x\"%)",
                   support.error_of(q.get, q, {timeout = "x"}).message)
    assert.matches("q:put: unknown option 'wait'",
                   support.error_of(q.put, q, 1, {wait = true}).message)
  end)
end)

describe("util.map", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  it("applies a function to every value in tasks, results in order", function()
    local xs = {}
    for i = 1, 100 do xs[i] = i end
    local out = util.map(function(x) return x * x end, xs)
    assert.are.equal(100, #out)
    assert.are.equal(1, out[1])
    assert.are.equal(10000, out[100])
  end)

  it("sends chunk values per task", function()
    local before = cray.stats().tasks.submitted
    local out = util.map(function(x) return x + 1 end, {1, 2, 3, 4, 5}, {chunk = 2})
    assert.are.same({2, 3, 4, 5, 6}, out)
    assert.are.equal(before + 3, cray.stats().tasks.submitted)
  end)

  it("refuses what is not a function, an array or a chunk >= 1", function()
    assert.matches("util.map: expects a function %(got string%)",
                   support.error_of(util.map, "f", {}).message)
    assert.matches("util.map: expects an array of values %(got nil%)",
                   support.error_of(util.map, function() end).message)
    assert.matches("util.map: option 'chunk' must be a whole number from 1 to 2147483647 %(got 0%)",
                   support.error_of(util.map, function() end, {}, {chunk = 0}).message)
  end)
end)
