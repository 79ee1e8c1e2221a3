local support = require "spec.support"
local cray = support.fresh()

describe("error objects", function()
  it("carry kind, message and the traceback of where they were raised", function()
    local e = support.error_of(cray.put)
    assert.is_true(cray.is_error(e))
    assert.are.equal("invalid_argument", e.kind)
    assert.is_string(e.message)
    assert.matches("errors_spec.lua", e.traceback)
  end)

  it("print everything they hold with tostring", function()
    local cause = cray.Error and setmetatable({kind = "timeout", message = "slow"}, cray.Error)
    local e = setmetatable({kind = "task_error", message = "boom", task = "double",
                            traceback = "stack traceback:\n\tscript.lua:3: in function",
                            value = 42, cause = cause}, cray.Error)
    local s = tostring(e)
    assert.matches("^cray task_error error: boom", s)
    assert.matches("in task: double", s)
    assert.matches("raised value: 42", s)
    assert.matches("script.lua:3", s)
    assert.matches("caused by: cray timeout error: slow", s)
  end)

  it("travel through the store with their fields and cause", function()
    local cause = setmetatable({kind = "timeout", message = "slow"}, cray.Error)
    local e = setmetatable({kind = "task_error", message = "boom", cause = cause,
                            value = {code = 7}}, cray.Error)
    local got = cray.get(cray.put(e))
    assert.is_true(cray.is_error(got))
    assert.is_true(cray.is_error(got.cause))
    assert.are.equal("slow", got.cause.message)
    assert.are.equal(7, got.value.code)
  end)

  it("are told apart from other values", function()
    assert.is_false(cray.is_error({kind = "timeout"}))
    assert.is_false(cray.is_error("timeout"))
  end)
end)
