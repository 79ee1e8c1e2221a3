local support = require "spec.support"
local cray = support.fresh({workers = 1})

-- A task that raises `raise(n)` on its first `fails` runs and then returns its run count;
-- workers = 1, so _G counts runs across retries.
local function flaky(fails, raise, opts)
  return cray.remote(function(key)
    _G[key] = (_G[key] or 0) + 1
    if _G[key] <= fails then raise(_G[key]) end
    return _G[key]
  end, opts)
end

local runs = function(key)
  return cray.get(cray.remote(function(k) return _G[k] end).remote(key))
end

describe("retry_exceptions by kind", function()
  before_each(function() cray = support.fresh({workers = 1}) end)

  it("retries an error whose cause has a listed kind", function()
    local f = flaky(2, function() cray.get(cray.put(1), {timeout = -1}) end,
                    {max_retries = 5, retry_exceptions = {"invalid_argument"}})
    assert.are.equal(3, cray.get(f.remote("k1")))
  end)

  it("retries a raised table whose kind field is listed", function()
    local f = flaky(1, function() error({kind = "db_down"}) end,
                    {max_retries = 5, retry_exceptions = {"timeout", "db_down"}})
    assert.are.equal(2, cray.get(f.remote("k2")))
  end)

  it("retries any task_error when task_error is listed", function()
    local f = flaky(1, function() error("plain") end,
                    {max_retries = 5, retry_exceptions = {"task_error"}})
    assert.are.equal(2, cray.get(f.remote("k3")))
  end)

  it("does not retry an error of a kind not listed", function()
    local f = flaky(1, function() error({kind = "fatal"}) end,
                    {max_retries = 5, retry_exceptions = {"db_down"}})
    local e = support.error_of(cray.get, f.remote("k4"))
    assert.are.equal("fatal", e.value.kind)
    assert.are.equal(1, runs("k4"))
  end)
end)

describe("retry_exceptions as a predicate", function()
  before_each(function() cray = support.fresh({workers = 1}) end)

  it("retries while the predicate says so, given the error object", function()
    local f = flaky(3, function(n) error("try " .. n) end, {
      max_retries = 5,
      retry_exceptions = function(e) return e.kind == "task_error" and e.message:match("try 1$") end,
    })
    local e = support.error_of(cray.get, f.remote("k5"))
    assert.matches("try 2$", e.message)
    assert.are.equal(2, runs("k5"))
  end)

  it("does not retry when the predicate raises", function()
    local f = flaky(1, function() error("x") end,
                    {max_retries = 5, retry_exceptions = function() error("bad predicate") end})
    support.error_of(cray.get, f.remote("k6"))
    assert.are.equal(1, runs("k6"))
  end)

  it("keeps within max_retries", function()
    local f = flaky(10, function() error("again") end,
                    {max_retries = 2, retry_exceptions = function() return true end})
    support.error_of(cray.get, f.remote("k7"))
    assert.are.equal(3, runs("k7"))
  end)

  it("refuses what is not a boolean, a list of kinds or a function", function()
    local msg = "option 'retry_exceptions' must be a boolean, a list of error kinds or a "
                .. "function of the error %(got"
    assert.matches(msg, support.error_of(cray.remote, function() end,
                                         {retry_exceptions = "task_error"}).message)
    assert.matches(msg, support.error_of(cray.remote, function() end,
                                         {retry_exceptions = {}}).message)
    assert.matches("option 'retry_exceptions' must be a list of error kinds %(strings%)",
                   support.error_of(cray.remote, function() end,
                                    {retry_exceptions = {"a", 2}}).message)
  end)
end)
