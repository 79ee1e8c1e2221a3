local support = require "spec.support"
local cray = support.fresh()

describe("ids as hex: ref:hex() and cray.ref(hex)", function()
  before_each(function() cray = support.fresh() end)

  it("writes a ref's id as 32 lowercase hex digits, as tostring shows it", function()
    local ref = cray.put("v")
    local hex = ref:hex()
    assert.are.equal(32, #hex)
    assert.is_truthy(hex:match("^[0-9a-f]+$"))
    assert.are.equal("ObjectRef(" .. hex .. ")", tostring(ref))
  end)

  it("makes a ref from the hex digits that is equal to the first and gets its value", function()
    local ref = cray.put({n = 7})
    local again = cray.ref(ref:hex())
    assert.are.equal(ref, again)
    assert.are.same({n = 7}, cray.get(again))
    assert.are.equal(ref, cray.ref(ref:hex():upper()))
  end)

  it("holds a reference of its own: the object outlives the ref it came from", function()
    local ref = cray.put("kept")
    local hex = ref:hex()
    local again = cray.ref(hex)
    ref = nil -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    assert.are.equal("kept", cray.get(again))
    local objects = cray.stats().store.objects
    again = nil -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    assert.are.equal(objects - 1, cray.stats().store.objects)
  end)

  it("reaches a task's result by its id", function()
    local f = cray.remote(function(x) return x + 1 end)
    local r = f.remote(41)
    assert.are.equal(42, cray.get(cray.ref(r:hex())))
  end)

  it("refuses what is not 32 hex digits, naming it", function()
    for _, bad in ipairs{"", "abc", ("0"):rep(31), ("0"):rep(33), ("g"):rep(32),
                         ("0"):rep(32) .. "\0"} do
      local ok, e = pcall(cray.ref, bad)
      assert.is_false(ok)
      assert.are.equal("invalid_argument", e.kind)
      assert.is_truthy(e.message:find("32 hex digits", 1, true))
    end
    local ok, e = pcall(cray.ref, 12)
    assert.is_false(ok)
    assert.is_truthy(e.message:find("(got 12)", 1, true))
    ok, e = pcall(cray.ref, "abc")
    assert.is_truthy(e.message:find([[(got "abc")]], 1, true))
  end)

  it("says object_lost for an id that names no object", function()
    local ok, e = pcall(cray.ref, ("0"):rep(32))
    assert.is_false(ok)
    assert.are.equal("object_lost", e.kind)
    assert.is_truthy(e.message:find(("0"):rep(32), 1, true))
  end)
end)
