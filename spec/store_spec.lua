local support = require "spec.support"
local cray = support.fresh()

describe("cray.put and cray.get", function()
  before_each(function() cray = support.fresh() end)

  it("returns each kind of value as it was put", function()
    for _, v in ipairs{0, 42, -7, 2^53, 3.25, -0.5, 1e300, "", "héllo\0bytes", true, false} do
      assert.are.equal(v, cray.get(cray.put(v)))
    end
    assert.is_nil(cray.get(cray.put(nil)))
  end)

  it("keeps NaN and infinities", function()
    local nan = cray.get(cray.put(0 / 0))
    assert.is_true(nan ~= nan)
    assert.are.equal(math.huge, cray.get(cray.put(math.huge)))
    assert.are.equal(-math.huge, cray.get(cray.put(-math.huge)))
  end)

  it("returns a copy of a table, equal in content", function()
    local t = {1, 2, {x = "y", [10] = false}, name = "n", [0.5] = "half"}
    local got = cray.get(cray.put(t))
    assert.are.same(t, got)
    assert.are_not.equal(t, got)
  end)

  it("round-trips a 1 MB nested table", function()
    local t = {}
    for i = 1, 2000 do
      t[i] = {id = i, name = ("item-%05d"):format(i), tags = {"a", "b", i % 7},
              blob = ("x"):rep(500), score = i / 3}
    end
    local got = cray.get(cray.put(t))
    assert.are.same(t, got)
    assert.is_true(cray.stats().store.bytes > 2^20)
  end)

  it("gives a table of refs their first values, in order", function()
    local refs = {}
    for i = 1, 100 do refs[i] = cray.put(i * i) end
    local vals = cray.get(refs)
    assert.are.equal(100, #vals)
    for i = 1, 100 do assert.are.equal(i * i, vals[i]) end
  end)

  it("gives an empty table for an empty table of refs", function()
    assert.are.same({}, cray.get({}))
  end)

  it("accepts a timeout on objects that are ready", function()
    assert.are.equal("v", cray.get(cray.put("v"), {timeout = 0}))
    assert.are.same({"v"}, cray.get({cray.put("v")}, {timeout = 1}))
  end)

  it("refuses a put without exactly one value", function()
    local e = support.error_of(cray.put)
    assert.are.equal("invalid_argument", e.kind)
    assert.matches("takes exactly one value %(got 0%)", e.message)
    e = support.error_of(cray.put, 1, 2)
    assert.matches("got 2", e.message)
  end)

  it("refuses to get what is not a ref, naming the value", function()
    local e = support.error_of(cray.get, 42)
    assert.are.equal("invalid_argument", e.kind)
    assert.matches("ObjectRef or an array of ObjectRefs %(got 42%)", e.message)
  end)

  it("refuses a table that is not an array of refs, naming a key that does not belong", function()
    local r = cray.put(1)
    local e = support.error_of(cray.get, {a = r})
    assert.are.equal("invalid_argument", e.kind)
    assert.matches([[cray.get: expects an ObjectRef or an array of ObjectRefs %(got a table with ]]
                   .. [[key "a"%)]], e.message)
    assert.matches("%(got a table with key 5%)", support.error_of(cray.get, {r, [5] = r}).message)
    assert.matches([[cray.wait: expects an array of ObjectRefs %(got a table with key "a"%)]],
                   support.error_of(cray.wait, {a = r}).message)
  end)

  it("refuses a remote function or an actor handle, saying what it is and what to pass", function()
    local f = cray.remote(function() return 1 end)
    local h = cray.actor{get = function() return 1 end}.remote()
    assert.matches("cray.get: expects an ObjectRef or an array of ObjectRefs %(got a remote "
                   .. "function; call f.remote%(...%) and pass the refs it returns%)",
                   support.error_of(cray.get, f).message)
    assert.matches("cray.get: expects an ObjectRef or an array of ObjectRefs %(got an actor "
                   .. "handle; call a method, h.method.remote%(...%), and pass the ref it returns%)",
                   support.error_of(cray.get, h).message)
    assert.matches("cray.wait: expects an array of ObjectRefs %(got an actor handle",
                   support.error_of(cray.wait, h).message)
    assert.matches("%(got an actor method", support.error_of(cray.get, h.get).message)
  end)

  it("names the element of a table that is not a ref", function()
    local e = support.error_of(cray.get, {cray.put(1), "nope"})
    assert.are.equal("invalid_argument", e.kind)
    assert.matches([[refs%[2%] is not an ObjectRef %(got "nope"%)]], e.message)
  end)

  it("refuses unknown options and bad timeouts", function()
    local r = cray.put(1)
    local e = support.error_of(cray.get, r, {timout = 1})
    assert.are.equal("invalid_argument", e.kind)
    assert.matches("unknown option 'timout' %(known: timeout%)", e.message)
    e = support.error_of(cray.get, r, {timeout = "soon"})
    assert.matches([[option 'timeout' must be a number of seconds >= 0 %(got "soon"%)]], e.message)
    e = support.error_of(cray.get, r, {timeout = -1})
    assert.matches("option 'timeout' must be a number of seconds >= 0 %(got %-1%)", e.message)
    e = support.error_of(cray.get, r, 5)
    assert.matches("options must be a table %(got 5%)", e.message)
  end)

  it("reports the caller's position in usage errors", function()
    local e = support.error_of(function()
      local v = cray.get(42)
      return v
    end)
    assert.matches("store_spec.lua:%d+: cray.get", e.message)
    assert.is_string(e.traceback)
  end)
end)

describe("ObjectRef", function()
  before_each(function() cray = support.fresh() end)

  it("shows its 32-digit hex id in tostring and hex()", function()
    local r = cray.put(1)
    assert.matches("^ObjectRef%(" .. ("%x"):rep(32) .. "%)$", tostring(r))
    assert.are.equal(tostring(r), "ObjectRef(" .. r:hex() .. ")")
  end)

  it("gets a fresh id from every put", function()
    local seen = {}
    for _ = 1, 1000 do
      local h = cray.put(0):hex()
      assert.is_nil(seen[h])
      seen[h] = true
    end
  end)

  it("compares by id with ==", function()
    local a, b = cray.put(1), cray.put(1)
    assert.is_true(a == a)
    assert.is_false(a == b)
    local back = cray.get(cray.put({a}))[1]
    assert.are_not.equal(rawequal(a, back), true)
    assert.is_true(a == back)
  end)

  it("travels inside stored values and still names its object", function()
    local inner = cray.put("inner value")
    local outer = cray.put({ref = inner, list = {inner}})
    local got = cray.get(outer)
    assert.are.equal("inner value", cray.get(got.ref))
    assert.are.equal("inner value", cray.get(got.list[1]))
  end)

  it("is released when collected: the store frees its object", function()
    support.collect()
    local before = cray.stats().store
    do
      local refs = {}
      for i = 1, 500 do refs[i] = cray.put(("x"):rep(100)) end
      local during = cray.stats().store
      assert.are.equal(before.objects + 500, during.objects)
      assert.is_true(during.bytes >= before.bytes + 500 * 100)
    end
    support.collect()
    local after = cray.stats().store
    assert.are.equal(before.objects, after.objects)
    assert.are.equal(before.bytes, after.bytes)
  end)

  it("keeps objects alive while a stored value nests their refs", function()
    local outer
    do
      local inner = cray.put("kept")
      outer = cray.put({inner})
    end
    support.collect()
    local objects = cray.stats().store.objects
    assert.are.equal("kept", cray.get(cray.get(outer)[1]))
    outer = nil
    support.collect()
    assert.are.equal(objects - 2, cray.stats().store.objects)
  end)

  it("frees a long chain of nested refs without deep recursion", function()
    support.collect()
    local base = cray.stats().store.objects
    do
      local r = cray.put(0)
      for i = 1, 100000 do r = cray.put({r, i}) end
      assert.are.equal(base + 100001, cray.stats().store.objects)
    end
    support.collect()
    assert.are.equal(base, cray.stats().store.objects)
  end)

  it("is stale after cray.shutdown: using it raises object_lost", function()
    local r = cray.put(1)
    cray.shutdown()
    cray.init()
    local e = support.error_of(cray.get, r)
    assert.are.equal("object_lost", e.kind)
    assert.matches("shut down", e.message)
    assert.are.equal("ObjectRef(stale)", tostring(r))
  end)

  it("stays stale beside the new runtime's refs, and collecting it frees nothing there", function()
    local r = cray.put(1)
    cray.shutdown()
    cray.init()
    local fresh = cray.put(2)
    assert.are.equal("ObjectRef", getmetatable(r))
    assert.are.equal("ObjectRef", getmetatable(fresh))
    assert.are.equal("object_lost", support.error_of(cray.get, r).kind)
    assert.are.equal("object_lost", support.error_of(cray.wait, {r}).kind)
    assert.are.equal("object_lost", support.error_of(cray.put, {r}).kind)
    local objects = cray.stats().store.objects
    r = nil
    collectgarbage()
    collectgarbage()
    assert.are.equal(objects, cray.stats().store.objects)
    assert.are.equal(2, cray.get(fresh))
  end)
end)

describe("cray.wait", function()
  before_each(function() cray = support.fresh() end)

  it("returns ready refs in order, at most num_returns of them", function()
    local refs = {cray.put(1), cray.put(2), cray.put(3)}
    local ready, pending = cray.wait(refs)
    assert.are.equal(1, #ready)
    assert.is_true(ready[1] == refs[1])
    assert.are.equal(2, #pending)
    assert.is_true(pending[1] == refs[2] and pending[2] == refs[3])
    ready, pending = cray.wait(refs, {num_returns = 3, timeout = 1})
    assert.are.equal(3, #ready)
    assert.are.equal(0, #pending)
  end)

  it("returns nothing ready for num_returns = 0 or no refs", function()
    local ready, pending = cray.wait({cray.put(1)}, {num_returns = 0})
    assert.are.same({}, ready)
    assert.are.equal(1, #pending)
    ready, pending = cray.wait({})
    assert.are.same({}, ready)
    assert.are.same({}, pending)
  end)

  it("refuses num_returns outside 0..#refs", function()
    local refs = {cray.put(1)}
    for _, case in ipairs{{2, "2"}, {-1, "%-1"}, {0.5, "0.5"}, {"1", '"1"'}, {0 / 0, "nan"}} do
      local e = support.error_of(cray.wait, refs, {num_returns = case[1]})
      assert.are.equal("invalid_argument", e.kind)
      assert.matches("option 'num_returns' must be a whole number from 0 to #refs %(1%) %(got "
                     .. case[2] .. "%)", e.message)
    end
  end)

  it("refuses what is not an array of refs, and unknown options", function()
    assert.matches("expects an array of ObjectRefs %(got an ObjectRef; pass {ref}%)",
                   support.error_of(cray.wait, cray.put(1)).message)
    assert.matches("refs%[1%] is not an ObjectRef",
                   support.error_of(cray.wait, {1}).message)
    assert.matches("unknown option 'n' %(known: num_returns, timeout%)",
                   support.error_of(cray.wait, {}, {n = 1}).message)
  end)
end)

describe("cray.stats", function()
  it("counts objects and bytes and reports the budget", function()
    cray = support.fresh({memory = "64M", workers = 3})
    local s = cray.stats()
    assert.are.equal(3, s.workers)
    assert.are.equal(0, s.store.objects)
    assert.are.equal(0, s.store.bytes)
    assert.are.equal(64 * 1024 * 1024, s.store.budget)
    local keep = cray.put(("z"):rep(1000))
    s = cray.stats().store
    assert.are.equal(1, s.objects)
    assert.is_true(s.bytes >= 1000 and s.bytes < 1100)
    assert.are.equal(1, s.puts)
    for _, k in ipairs{"spilled_objects", "spilled_bytes", "restored_objects", "frees"} do
      assert.are.equal(0, s[k])
    end
    assert.is_not_nil(keep)
  end)
end)

-- An ObjectRef to a small value (one kept inside its entry) is released with others when
-- the Lua collector drops it (bindings/objref.c): whatever observes the store sees it gone.
describe("dropping many small refs", function()
  -- 1,000 is not a multiple of the 256 a state releases at once: some are still queued
  -- when the collection ends.
  local N = 1000

  it("shows every one freed in cray.stats right after the collection", function()
    cray = support.fresh()
    local keep = cray.put(7)
    local refs = {}
    for i = 1, N do refs[i] = cray.put(i) end
    assert.are.equal(N + 1, cray.stats().store.objects)
    refs = nil
    collectgarbage()
    local s = cray.stats().store
    assert.are.equal(1, s.objects)
    assert.are.equal(N, s.frees)
    assert.are.equal(7, cray.get(keep))
  end)

  it("frees them before a put under the budget needs their room", function()
    cray = support.fresh({memory = "8M"})
    local refs = {}
    for i = 1, N do refs[i] = cray.put(i) end
    refs[N + 1] = cray.put(("x"):rep(6 * 2^20))
    refs = nil
    collectgarbage()
    local big = cray.put(("y"):rep(6 * 2^20))
    local s = cray.stats().store
    assert.are.equal(1, s.objects)
    assert.are.equal(0, s.spilled_objects)
    assert.are.equal(6 * 2^20, #cray.get(big))
  end)

  it("keeps a value alive while another ref to it is held", function()
    cray = support.fresh()
    local refs, kept = {}, {}
    for i = 1, N do
      refs[i] = cray.put(i)
      if i % 3 == 0 then kept[#kept + 1] = cray.ref(refs[i]:hex()) end
    end
    refs = nil
    collectgarbage()
    assert.are.equal(#kept, cray.stats().store.objects)
    for k, ref in ipairs(kept) do assert.are.equal(3 * k, cray.get(ref)) end
  end)

  it("frees them at shutdown, and a new runtime starts with none", function()
    cray = support.fresh()
    local refs = {}
    for i = 1, N do refs[i] = cray.put(i) end
    refs = nil
    collectgarbage()
    cray.shutdown()
    cray.init()
    local more = {}
    for i = 1, N do more[i] = cray.put(i) end
    more = nil
    collectgarbage()
    local s = cray.stats().store
    assert.are.equal(0, s.objects)
    assert.are.equal(N, s.puts)
    assert.are.equal(N, s.frees)
  end)

  it("frees those a task dropped before its result is seen", function()
    cray = support.fresh({workers = 1})
    local drop = cray.remote(function(n)
      local refs = {}
      for i = 1, n do refs[i] = cray.put(i) end
      refs = nil
      collectgarbage()
      return n
    end)
    local first = drop.remote(1) -- kept: the driver's collector may not free it meanwhile
    assert.are.equal(1, cray.get(first))
    local before = cray.stats().store
    local result = drop.remote(N)
    assert.are.equal(N, cray.get(result))
    local s = cray.stats().store
    assert.are.equal(before.objects + 1, s.objects)
    assert.are.equal(before.frees + N, s.frees)
    assert.are.equal(1, cray.get(first))
  end)
end)
