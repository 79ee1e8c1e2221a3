local support = require "spec.support"
local cray = support.fresh({workers = 2})

local function values(gen)
  local out = {}
  for ref in gen do out[#out + 1] = cray.get(ref) end
  return out
end

-- An actor that lets the spec see what a task did: set(k, v), get(k).
local function board()
  return cray.actor{
    init = function(self) self.v = {} end,
    set = function(self, k, v) self.v[k] = v end,
    get = function(self, k) return self.v[k] end,
  }.remote()
end

describe("streaming tasks", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  it("stream each value the body yields, in order", function()
    local squares = cray.remote(function(n) for i = 1, n do coroutine.yield(i * i) end end)
    assert.are.same({1, 4, 9, 16, 25}, values(squares.options{num_returns = "streaming"}.remote(5)))
  end)

  it("give the first value before the task ends", function()
    local b = board()
    local f = cray.remote(function(bd)
      coroutine.yield("first")
      while not cray.get(bd.get.remote("go")) do cray.sleep(0.002) end
      coroutine.yield("second")
    end, {num_returns = "streaming"})
    local gen = f.remote(b)
    local first = gen()
    assert.are.equal("first", cray.get(first))
    assert.are.same({}, (cray.wait({gen.ref}, {timeout = 0})))
    b.set.remote("go", true)
    assert.are.equal("second", cray.get(gen()))
    assert.is_nil(gen())
  end)

  it("end with a ref that raises the task's error, after the values", function()
    local f = cray.remote(function()
      coroutine.yield(1)
      coroutine.yield(2)
      error("broke after two")
    end, {num_returns = "streaming"})
    local refs = {}
    for ref in f.remote() do refs[#refs + 1] = ref end
    assert.are.equal(3, #refs)
    assert.are.same({1, 2}, {cray.get(refs[1]), cray.get(refs[2])})
    local e = support.error_of(cray.get, refs[3])
    assert.are.equal("task_error", e.kind)
    assert.matches("broke after two", e.message)
  end)

  it("yield nil and tables as values", function()
    local f = cray.remote(function() coroutine.yield(nil); coroutine.yield({a = 1}) end,
                         {num_returns = "streaming"})
    local gen = f.remote()
    assert.is_nil(cray.get(gen()))
    assert.are.same({a = 1}, cray.get(gen()))
    assert.is_nil(gen())
  end)

  it("pause the producer when the consumer is generator_backpressure values behind", function()
    local b = board()
    local f = cray.remote(function(bd, n)
      for i = 1, n do
        bd.set.remote("produced", i)
        coroutine.yield(i)
      end
    end, {num_returns = "streaming", generator_backpressure = 3})
    local gen = f.remote(b, 20)
    support.poll(function() return (cray.get(b.get.remote("produced")) or 0) >= 4 end)
    cray.sleep(0.05)
    -- it put a 4th value, then paused: 3 values ahead is the most it waits at
    assert.are.equal(4, cray.get(b.get.remote("produced")))
    local got = values(gen)
    assert.are.equal(20, #got)
    assert.are.equal(20, got[20])
  end)

  it("are consumed inside another task", function()
    local count = cray.remote(function(n) for i = 1, n do coroutine.yield(i) end end,
                              {num_returns = "streaming"})
    local sum = cray.remote(function(n)
      local total = 0
      for ref in count.remote(n) do total = total + cray.get(ref) end
      return total
    end)
    assert.are.equal(5050, cray.get(sum.remote(100)))
  end)

  it("stop the producer when cancelled", function()
    local b = board()
    local f = cray.remote(function(bd)
      local i = 0
      while true do
        i = i + 1
        bd.set.remote("last", i)
        coroutine.yield(i)
        cray.sleep(0.001)
      end
    end, {num_returns = "streaming", generator_backpressure = -1})
    local gen = f.remote(b)
    assert.are.equal(1, cray.get(gen()))
    assert.is_true(cray.cancel(gen))
    local e = support.error_of(cray.get, gen.ref)
    assert.are.equal("cancelled", e.kind)
    local last = cray.get(b.get.remote("last"))
    cray.sleep(0.05)
    assert.are.equal(last, cray.get(b.get.remote("last")))
    local refs = {}
    for ref in gen do refs[#refs + 1] = ref end
    assert.are.equal("cancelled", support.error_of(cray.get, refs[#refs]).kind)
  end)

  it("refuse bad num_returns and generator_backpressure", function()
    local f = cray.remote(function() end)
    assert.matches("option 'num_returns' must be a whole number from 0 to 4096, or \"streaming\"",
                   support.error_of(f.options, {num_returns = "stream"}).message)
    assert.matches("option 'generator_backpressure' must be a whole number >= 1, or %-1",
                   support.error_of(f.options, {generator_backpressure = 0}).message)
  end)
end)

describe("streaming actor methods", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  it("stream what the method yields, with the actor's state", function()
    local A = cray.actor{
      init = function(self) self.base = 100 end,
      count = function(self, n) for i = 1, n do coroutine.yield(self.base + i) end end,
    }
    local a = A.remote()
    assert.are.same({101, 102, 103},
                    values(a.count.options{num_returns = "streaming"}.remote(3)))
  end)
end)
