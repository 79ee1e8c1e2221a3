local support = require "spec.support"
local ffi = require "ffi"
local cray = support.fresh()

local function roundtrip(v) return cray.get(cray.put(v)) end

describe("values in the store", function()
  it("keep integers exact up to 2^53 and int64/uint64 cdata exact beyond", function()
    for _, v in ipairs{127, 128, 255, 256, 65535, 65536, 2^32, -32, -33, -2^31, -2^53} do
      assert.are.equal(v, roundtrip(v))
    end
    local big = roundtrip(9007199254740993LL)
    assert.are.equal("int64_t", tostring(ffi.typeof(big)):match("<(.-)>"))
    assert.is_true(big == 9007199254740993LL)
    assert.is_true(roundtrip(18446744073709551615ULL) == 18446744073709551615ULL)
  end)

  it("keep a table with keys exactly 1..n as an array and others as maps", function()
    assert.are.same({1, 2, 3}, roundtrip({1, 2, 3}))
    assert.are.same({[1] = "a", [3] = "c"}, roundtrip({[1] = "a", [3] = "c"}))
    assert.are.same({[true] = 1, [2.5] = "x", k = {}}, roundtrip({[true] = 1, [2.5] = "x", k = {}}))
  end)

  it("give FFI arrays of every number type back as views of the same elements", function()
    for _, ct in ipairs{"int8_t", "uint8_t", "int16_t", "uint16_t", "int32_t", "uint32_t",
                        "int64_t", "uint64_t", "float", "double"} do
      local a = ffi.new(ct .. "[?]", 5)
      for i = 0, 4 do a[i] = i * 3 + 1 end
      local b = roundtrip(a)
      assert.is_true(ffi.istype("cray_view_" .. ct, b))
      assert.are.equal(5, #b)
      for i = 0, 4 do assert.is_true(a[i] == b[i]) end
    end
    local fixed = ffi.new("double[3]", {1.5, 2.5, 3.5})
    local got = roundtrip(fixed)
    assert.are.equal(2.5, got[1])
  end)

  it("carry functions with their upvalues by value", function()
    local base, names = 10, {"a", "b"}
    local f = function(x) return base + x, names[2], string.format("%d", x) end
    local g = roundtrip(f)
    assert.are_not.equal(f, g)
    local a, b, c = g(5)
    assert.are.equal(15, a)
    assert.are.equal("b", b)
    assert.are.equal("5", c)
  end)

  it("carry standard-library C functions by name, alone or as upvalues", function()
    assert.are.equal(string.format, roundtrip(string.format))
    assert.are.equal(print, roundtrip(print))
    local fmt, floor = string.format, math.floor
    local f = roundtrip(function(x) return fmt("%05.1f", floor(x)) end)
    assert.are.equal("007.0", f(7.9))
  end)

  it("carry self-recursive local functions and cyclic tables", function()
    local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
    assert.are.equal(6765, roundtrip(fib)(20))
    local t = {name = "loop"}
    t.self = t
    local u = roundtrip(t)
    assert.are.equal(u, u.self)
    assert.are.equal("loop", u.self.name)
  end)

  it("carry module tables by name and the global table as the receiver's", function()
    local json_like = require "spec.support"
    local g = _G
    local f = function() return json_like.build, g.type end
    local build, ty = roundtrip(f)()
    assert.are.equal(support.build, build)
    assert.are.equal(type, ty)
  end)

  it("carry tables of registered classes with their metatable", function()
    local Point = {}
    Point.__index = Point
    function Point.norm2(p) return p.x * p.x + p.y * p.y end
    cray.register_class("spec.Point", Point)
    local p = roundtrip(setmetatable({x = 3, y = 4}, Point))
    assert.are.equal(Point, getmetatable(p))
    assert.are.equal(25, p:norm2())
  end)
end)

-- Strings and FFI arrays from 4 KiB go into the blob straight from the Lua value; the
-- scratch buffer grows past 64 KiB and is let go past 1 MiB. Every extension that holds
-- other values must count those bytes in its length, at every such size.
describe("large strings and arrays inside extensions", function()
  local sizes = {}
  for _, n in ipairs{4096, 65536, 1048576} do
    for d = -1, 1 do sizes[#sizes + 1] = n + d end
  end
  local function bytes(n) return ("0123456789abcdef"):rep(n / 16 + 1):sub(1, n) end
  local function octets(n)
    local a = ffi.new("uint8_t[?]", n)
    for i = 0, n - 1, 97 do a[i] = i % 251 end
    return a
  end
  local function same_bytes(a, b, n)
    assert.are.equal(n, #b)
    return ffi.string(a, n) == ffi.string(b.data, n)
  end
  local Box = {}
  Box.__index = Box
  cray.register_class("spec.Box", Box)

  it("keep a string in an error object's fields", function()
    for _, n in ipairs(sizes) do
      local s = bytes(n)
      local e = roundtrip(setmetatable({kind = "runtime", message = s, value = {s}}, cray.Error))
      assert.are.equal(cray.Error, getmetatable(e))
      assert.are.equal(s, e.message)
      assert.are.equal(s, e.value[1])
    end
  end)

  it("keep a string and an FFI array in a registered class's fields", function()
    for _, n in ipairs(sizes) do
      local s, a = bytes(n), octets(n)
      local b = roundtrip(setmetatable({s = s, a = a, after = "end"}, Box))
      assert.are.equal(Box, getmetatable(b))
      assert.are.equal(s, b.s)
      assert.is_true(same_bytes(a, b.a, n))
      assert.are.equal("end", b.after)
    end
  end)

  it("keep strings and FFI arrays among a function's upvalues", function()
    for _, n in ipairs(sizes) do
      local s, a = bytes(n), octets(n)
      local g = roundtrip(function() return s, a, #s end)
      local s2, a2, len = g()
      assert.are.equal(s, s2)
      assert.is_true(same_bytes(a, a2, n))
      assert.are.equal(n, len)
    end
  end)

  it("keep them through extensions nested in extensions", function()
    for _, n in ipairs(sizes) do
      local s = bytes(n)
      local err = setmetatable({kind = "runtime", message = s}, cray.Error)
      local box = setmetatable({err = err, f = function() return s end}, Box)
      local outer = roundtrip(function() return box, s end)
      local b, s2 = outer()
      assert.are.equal(s, b.err.message)
      assert.are.equal(s, b.f())
      assert.are.equal(s, s2)
    end
  end)

  it("run a remote function whose upvalue is a 5,000-byte string", function()
    local s = bytes(5000)
    local f = cray.remote(function(k) return #s + k, s:sub(-3) end)
    local n, tail = cray.get(f.remote(1))
    assert.are.equal(5001, n)
    assert.are.equal(s:sub(-3), tail)
  end)

  it("give the caller a task_error for a task that raises a 4 KiB message", function()
    local msg = ("M"):rep(4096)
    local f = cray.remote(function() error(msg, 0) end)
    local e = support.error_of(cray.get, f.remote())
    assert.are.equal("task_error", e.kind)
    assert.is_truthy(e.message:find(msg, 1, true))
  end)
end)

describe("values the store refuses", function()
  local function refusal(v) return support.error_of(cray.put, v) end

  it("names the path to userdata", function()
    local e = refusal({conn = io.stdout})
    assert.are.equal("serialization", e.kind)
    assert.matches("value%.conn: cannot serialize userdata", e.message)
  end)

  it("names the path through arrays, odd keys and upvalues", function()
    assert.matches("value%[2%]%.x: cannot serialize", refusal({1, {x = io.stderr}}).message)
    assert.matches('value%["a key"%]: cannot serialize', refusal({["a key"] = io.stdout}).message)
    local conn = io.stdout
    local f = function() return conn end
    assert.matches("value%.<upvalue conn>: cannot serialize userdata", refusal(f).message)
  end)

  it("refuses coroutines", function()
    local e = refusal({co = coroutine.create(function() end)})
    assert.are.equal("serialization", e.kind)
    assert.matches("value%.co: cannot serialize a coroutine", e.message)
  end)

  it("refuses C functions that are not in the standard library", function()
    local e = refusal({f = io.stdout.write})
    assert.are.equal("serialization", e.kind)
    assert.matches("value%.f: cannot serialize C function", e.message)
  end)

  it("refuses tables whose metatable is not registered", function()
    local e = refusal({obj = setmetatable({}, {})})
    assert.are.equal("serialization", e.kind)
    assert.matches("value%.obj: cannot serialize a table with a metatable that is not "
                   .. "registered", e.message)
  end)

  it("refuses cdata that is not a number array or a 64-bit integer", function()
    local e = refusal({p = ffi.new("struct { int a; }")})
    assert.are.equal("serialization", e.kind)
    assert.matches("value%.p: cannot serialize cdata<struct", e.message)
  end)

  it("refuses nesting past the depth limit with an error, not a crash", function()
    local t = {}
    for _ = 1, 10000 do t = {t} end
    local e = refusal(t)
    assert.are.equal("serialization", e.kind)
    assert.matches("nesting deeper than 128 levels", e.message)
  end)

  it("loses nothing already stored when a put is refused", function()
    local keep = cray.put({1, 2, 3})
    local objects = cray.stats().store.objects
    refusal({io.stdout})
    assert.are.equal(objects, cray.stats().store.objects)
    assert.are.same({1, 2, 3}, cray.get(keep))
  end)
end)
