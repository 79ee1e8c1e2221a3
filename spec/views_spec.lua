local support = require "spec.support"
local ffi = require "ffi"
pcall(ffi.cdef, [[
int memcmp(const void *a, const void *b, size_t n);
int poll(void *fds, unsigned long nfds, int timeout);
]])

local MiB = 2^20
local cray = require "cray"

local function doubles(n)
  local a = ffi.new("double[?]", n)
  for i = 0, n - 1 do a[i] = i / 4 end
  return a
end

describe("views of FFI arrays", function()
  before_each(function() cray = support.fresh() end)

  it("come back read-only, indexed from 0, with their length", function()
    local v = cray.get(cray.put(doubles(10)))
    assert.is_true(ffi.istype("cray_view_double", v))
    assert.are.equal(10, #v)
    assert.are.equal(10, v.len)
    for i = 0, 9 do assert.are.equal(i / 4, v[i]) end
    assert.are.equal(2.25, v.data[9])
    assert.are.equal("cray.view<double>[10]", tostring(v))
  end)

  it("point into the stored bytes, 16-byte aligned", function()
    local r = cray.put({a = ffi.new("int8_t[3]"), b = doubles(5), c = ffi.new("int32_t[7]")})
    local t = cray.get(r)
    for _, k in ipairs{"a", "b", "c"} do
      assert.are.equal(0, tonumber(ffi.cast("uintptr_t", t[k].data)) % 16, k)
    end
  end)

  it("refuse writes and reads out of range", function()
    local v = cray.get(cray.put(ffi.new("int32_t[3]", {1, 2, 3})))
    local ok, e = pcall(function() v[0] = 5 end)
    assert.is_false(ok)
    assert.matches("read%-only", e)
    assert.is_false(pcall(function() v.len = 1 end))
    ok, e = pcall(function() return v[3] end)
    assert.is_false(ok)
    assert.matches("index 3 out of range: a view of 3 elements has 0 to 2", e)
    assert.is_false(pcall(function() return v[-1] end))
  end)

  it("give a mutable copy with :copy()", function()
    local v = cray.get(cray.put(ffi.new("uint16_t[4]", {1, 2, 3, 4})))
    local c = v:copy()
    assert.is_true(ffi.istype("uint16_t[?]", c))
    c[0] = 9
    assert.are.equal(9, c[0])
    assert.are.equal(1, v[0])
    assert.are.equal(8, ffi.sizeof(c))
  end)

  it("travel again, as the arrays they show", function()
    local v = cray.get(cray.put(ffi.new("int64_t[3]", {-1, 0, 2^40})))
    local w = cray.get(cray.put({v}))[1]
    assert.is_true(ffi.istype("cray_view_int64_t", w))
    assert.is_true(w[0] == -1 and w[2] == 2^40)
  end)

  it("outlive their ref: the bytes stay while the view lives", function()
    support.collect()
    local base = cray.stats().store.objects
    local v
    do
      local r = cray.put(doubles(1000))
      v = cray.get(r)
    end
    support.collect()
    assert.are.equal(base, cray.stats().store.objects) -- the object is gone
    for i = 0, 999 do assert.are.equal(i / 4, v[i]) end -- its bytes are not
  end)

  it("outlive even the runtime", function()
    local v = cray.get(cray.put(doubles(300000)))
    cray.shutdown()
    cray.init()
    assert.are.equal(300000, #v)
    assert.are.equal(299999 / 4, v[299999])
    v = nil
    support.collect()
  end)

  it("cost no copy: 500 gets of an 80 MB array all point at the stored bytes", function()
    local a = ffi.new("int64_t[?]", 10 * MiB)
    local r = cray.put(a)
    local first = cray.get(r)
    for _ = 1, 499 do
      local v = cray.get(r)
      assert(v.data == first.data)
    end
  end)

  it("keep their object in memory: a viewed object is not spilled", function()
    cray = support.fresh({memory = "16M"})
    local r = cray.put(ffi.new("uint8_t[?]", 8 * MiB))
    local v = cray.get(r)
    local others = {}
    for i = 1, 64 do others[i] = cray.put(("%d"):format(i):rep(MiB / 2)) end
    assert.is_true(cray.stats().store.spilled_objects > 0)
    local restored = cray.stats().store.restored_objects
    local w = cray.get(r)
    assert.are.equal(restored, cray.stats().store.restored_objects) -- it was still there
    assert.is_true(w.data == v.data)
  end)
end)

describe("cray.get_buffer", function()
  before_each(function() cray = support.fresh() end)

  it("gives a pointer to a stored string and its length, zero-copy", function()
    local s = ("buffer "):rep(1000)
    local r = cray.put(s)
    local p, n = cray.get_buffer(r)
    assert.is_true(ffi.istype("const char *", p))
    assert.are.equal(#s, n)
    assert.are.equal(s, ffi.string(p, n))
    local q = cray.get_buffer(r)
    assert.is_true(p == q) -- the same bytes, not a copy
  end)

  it("gives the bytes of an FFI array", function()
    local a = ffi.new("int32_t[5]", {1, -2, 3, -4, 5})
    local p, n = cray.get_buffer(cray.put(a))
    assert.are.equal(20, n)
    assert.are.equal(0, ffi.C.memcmp(p, a, 20))
  end)

  it("keeps the bytes alive while the pointer lives", function()
    local p, n
    do p, n = cray.get_buffer(cray.put(("z"):rep(5000))) end
    support.collect()
    assert.are.equal(0, cray.stats().store.objects)
    assert.are.equal(("z"):rep(5000), ffi.string(p, n))
  end)

  it("reads the first value of a ref", function()
    local p, n = cray.get_buffer(cray.put("abc"))
    assert.are.equal("abc", ffi.string(p, n))
    assert.are.equal(3, n)
  end)

  it("refuses values that are not strings or FFI arrays, naming them", function()
    for _, case in ipairs{{42, "number"}, {{1, 2}, "table"}, {true, "boolean"},
                          {cray.put(1), "cray extension value"}} do
      local e = support.error_of(cray.get_buffer, cray.put(case[1]))
      assert.are.equal("invalid_argument", e.kind)
      assert.matches("cray.get_buffer: the object holds a " .. case[2]
                     .. ", not a string or an FFI array", e.message)
    end
    local e = support.error_of(cray.get_buffer, cray.put(nil))
    assert.matches("holds a nil", e.message)
  end)

  it("refuses what is not a ref, and unknown options", function()
    local e = support.error_of(cray.get_buffer, "text")
    assert.are.equal("invalid_argument", e.kind)
    assert.matches([[cray.get_buffer: expects an ObjectRef %(got "text"%)]], e.message)
    e = support.error_of(cray.get_buffer, cray.put("x"), {timout = 1})
    assert.matches("unknown option 'timout'", e.message)
  end)
end)
