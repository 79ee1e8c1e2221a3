local support = require "spec.support"
local ffi = require "ffi"
pcall(ffi.cdef, [[
int memcmp(const void *a, const void *b, size_t n);
int poll(void *fds, unsigned long nfds, int timeout);
]])

local MiB = 2^20
local cray = require "cray"

-- n bytes (a multiple of 4096) that belong to object i alone, each 4 KiB block different,
-- so a block out of place shows.
local function pattern(i, n)
  local blocks = {}
  for b = 1, n / 4096 do blocks[b] = ("%08x%08x"):format(i, b):rep(256) end
  return table.concat(blocks)
end

-- Waits for what the spill thread does in the background; fails after 60 s.
local function eventually(cond, what)
  for _ = 1, 6000 do
    if cond() then return end
    ffi.C.poll(nil, 0, 10)
  end
  error("timed out waiting for " .. what)
end

local function has(text, part)
  assert(text:find(part, 1, true), ("expected %q in %q"):format(part, text))
end

local function fresh_dir()
  local dir = os.tmpname()
  os.remove(dir)
  return dir
end

local function listing(dir)
  local p = io.popen("ls -A " .. dir .. " 2>&1")
  local out = p:read("*a")
  p:close()
  return out
end

describe("the memory budget", function()
  after_each(function() support.collect() end)

  it("writes a working set 8 times the budget to disk and reads it back byte-exact", function()
    cray = support.fresh({memory = "64M"})
    local refs = {}
    for i = 1, 512 do refs[i] = cray.put(pattern(i, MiB)) end
    local s = cray.stats().store
    assert.are.equal(512, s.objects)
    assert.are.equal(64 * MiB, s.budget)
    assert.is_true(s.bytes <= 96 * MiB + MiB, "memory stays under 1.5 x the budget")
    assert.is_true(s.spilled_objects >= 512 - 97)
    assert.are.equal(s.spilled_objects * (MiB + 5), s.spilled_bytes) -- a str32 header each
    for i = 1, 512 do assert.is_true(cray.get(refs[i]) == pattern(i, MiB), i) end
    assert.is_true(cray.stats().store.restored_objects >= 400)
  end)

  it("gives the bytes back, in memory and on disk, when the refs are dropped", function()
    cray = support.fresh({memory = "16M"})
    do
      local refs = {}
      for i = 1, 64 do refs[i] = cray.put(pattern(i, MiB)) end
      assert.is_true(cray.stats().store.spilled_objects > 0)
    end
    support.collect()
    -- the spill thread may be writing a few of them; it lets go when it is done
    eventually(function() return cray.stats().store.objects == 0 end, "the frees")
    local s = cray.stats().store
    assert.are.equal(0, s.bytes)
    assert.are.equal(0, s.spilled_objects)
    assert.are.equal(0, s.spilled_bytes)
    assert.are.equal(64, s.frees)
  end)

  it("keeps objects alive while a spilled value nests their refs", function()
    cray = support.fresh({memory = "4M"})
    local outer
    do
      local inner = cray.put("inner value")
      outer = cray.put({inner, pattern(1, 8 * MiB)})
    end
    support.collect()
    eventually(function() return cray.stats().store.bytes < MiB end, "the spill")
    assert.are.equal(2, cray.stats().store.objects)
    local got = cray.get(outer)
    assert.are.equal("inner value", cray.get(got[1]))
    assert.is_true(got[2] == pattern(1, 8 * MiB))
    got, outer = nil, nil
    support.collect()
    eventually(function() return cray.stats().store.objects == 0 end, "the frees")
  end)

  it("lets in an object bigger than the budget, then spills it", function()
    cray = support.fresh({memory = "1M"})
    local big = pattern(7, 16 * MiB)
    local r = cray.put(big)
    eventually(function() return cray.stats().store.bytes == 0 end, "the spill")
    assert.is_true(cray.get(r) == big)
  end)
end)

describe("a full store", function()
  after_each(function() support.collect() end)

  it("raises out_of_memory naming the budget, the spill directory and what is used", function()
    local dir = fresh_dir()
    os.execute("mkdir " .. dir)
    cray = support.fresh({memory = "8M", spill_dir = dir, spill_max = "16M"})
    -- The refs live on a coroutine's stack, which is dropped whole when it returns. On
    -- this function's own stack a slot it no longer uses can keep the last values it held
    -- until something overwrites it (whether something does depends on what LuaJIT
    -- compiled), and the collector would see the refs table there, alive.
    coroutine.wrap(function()
      local refs, e = {}, nil
      for i = 1, 200 do
        local ok, r = pcall(cray.put, pattern(i, MiB))
        if not ok then
          e = r
          break
        end
        refs[i] = r
      end
      assert.is_not_nil(e, "a put failed")
      assert.are.equal("out_of_memory", e.kind)
      has(e.message, "cray.put: out of memory: no room for a 1.0 MiB object")
      has(e.message, "(budget 8.0 MiB, -m/--memory)")
      has(e.message, "the spill space is full")
      has(e.message, "of 16.0 MiB (--spill-max) used in " .. dir)
      for i, r in ipairs(refs) do assert.is_true(cray.get(r) == pattern(i, MiB), i) end
    end)()
    support.collect()
    assert.is_true(pcall(cray.put, pattern(0, MiB)), "freeing makes room again")
    cray.shutdown()
    assert.are.equal("", listing(dir))
    os.remove(dir)
  end)

  it("refuses a spill directory it cannot use, at init", function()
    if cray.is_initialized() then cray.shutdown() end
    for dir, why in pairs{["/dev/null/spill"] = "Not a directory",
                          ["/proc/self/spill"] = "No such file or directory"} do
      local e = support.error_of(cray.init, {spill_dir = dir})
      assert.are.equal("runtime", e.kind)
      has(e.message, ("cray.init: cannot use spill directory '%s': %s"):format(dir, why))
      assert.is_false(cray.is_initialized())
    end
  end)

  it("makes crayrun exit 2, saying why", function()
    local status, out, err = support.crayrun("--spill-dir /dev/null/spill -e 'print(1)'")
    assert.are.equal(2, status)
    assert.are.equal("", out)
    has(err, "cannot use spill directory '/dev/null/spill': Not a directory")
  end)
end)

describe("the spill directory", function()
  it("is made under $TMPDIR and removed at exit", function()
    local tmp = fresh_dir()
    os.execute("mkdir " .. tmp)
    local status, out = support.crayrun(("-m 1M -e %q"):format(
      "local r = {} for i = 1, 8 do r[i] = cray.put(('x'):rep(2^20)) end " ..
      "while cray.stats().store.spilled_objects == 0 do end " ..
      "print(os.getenv('TMPDIR'))"), nil, {TMPDIR = tmp})
    assert.are.equal(0, status)
    assert.are.equal(tmp .. "\n", out)
    assert.are.equal("", listing(tmp))
    os.remove(tmp)
  end)

  it("when given, keeps the other files in it", function()
    local dir = fresh_dir()
    os.execute("mkdir " .. dir .. " && touch " .. dir .. "/mine")
    local status = support.crayrun(("-m 1M --spill-dir %s -e %q"):format(dir,
      "local r = {} for i = 1, 8 do r[i] = cray.put(('x'):rep(2^20)) end"))
    assert.are.equal(0, status)
    assert.are.equal("mine\n", listing(dir))
    os.execute("rm -r " .. dir)
  end)

  it("is made only when the first object spills", function()
    local tmp = fresh_dir()
    os.execute("mkdir " .. tmp)
    local status, out, err = support.crayrun(("-m 1M -e %q"):format(
      "local function n() local p = io.popen('ls -A ' .. os.getenv('TMPDIR')) " ..
      "local s = p:read('*a') p:close() return select(2, s:gsub('\\n', '')) end " ..
      "local small = cray.put('x') cray.get(cray.remote(function() return 1 end).remote()) " ..
      "print(n()) local r = {} for i = 1, 8 do r[i] = cray.put(('x'):rep(2^20)) end " ..
      "while cray.stats().store.spilled_objects == 0 do end print(n())"), nil, {TMPDIR = tmp})
    assert.are.equal(0, status, err)
    assert.are.equal("0\n1\n", out)
    assert.are.equal("", listing(tmp))
    os.remove(tmp)
  end)

  it("is a private one of cray's own inside --spill-dir, and files named like cray's stay",
     function()
    local dir = fresh_dir()
    os.execute("mkdir " .. dir)
    local names = {"data.mdb", "lock.mdb", "cray-spill-old"}
    for _, name in ipairs(names) do
      local f = assert(io.open(dir .. "/" .. name, "w"))
      f:write(name)
      f:close()
    end
    local status, out, err = support.crayrun(("-m 1M --spill-dir %s -e %q"):format(dir,
      "local r = {} for i = 1, 8 do r[i] = cray.put(('x'):rep(2^20)) end " ..
      "while cray.stats().store.spilled_objects == 0 do end " ..
      "local p = io.popen('stat -c %a " .. dir .. "/cray-spill-??????') " ..
      "io.write(p:read('*a')) p:close() print(cray.get(r[1]) == ('x'):rep(2^20))"))
    assert.are.equal(0, status, err)
    assert.are.equal("700\ntrue\n", out)
    assert.are.equal("cray-spill-old\ndata.mdb\nlock.mdb\n", listing(dir))
    for _, name in ipairs(names) do
      local f = assert(io.open(dir .. "/" .. name))
      assert.are.equal(name, f:read("*a"))
      f:close()
    end
    os.execute("rm -r " .. dir)
  end)
end)

describe("large values", function()
  after_each(function() support.collect() end)

  -- Under ThreadSanitizer every byte the C library copies gets four bytes of shadow, and
  -- a gigabyte is copied several times here (into the store, to disk, back, into Lua):
  -- that needs more memory than the machine has, so the sizes are a quarter there.
  local GiB = support.san == "thread" and 2^28 or 2^30
  local budget = support.san == "thread" and "64M" or "256M"

  it("round-trip a 1 GiB FFI array with a 256 MiB budget", function()
    cray = support.fresh({memory = budget})
    local n = GiB / 8
    local a = ffi.new("int64_t[?]", n)
    for i = 0, n - 1 do a[i] = i * 7 + 3 end
    local r = cray.put(a)
    eventually(function() return cray.stats().store.bytes < MiB end, "the spill")
    local v = cray.get(r)
    assert.are.equal(n, #v)
    assert.are.equal(0, ffi.C.memcmp(v.data, a, GiB))
    assert.are.equal(1, cray.stats().store.restored_objects)
  end)

  it("round-trip a 1 GiB string with a 256 MiB budget, as a string and as a buffer", function()
    cray = support.fresh({memory = budget})
    local s = pattern(3, 16 * MiB):rep(GiB / (16 * MiB))
    local r = cray.put(s)
    eventually(function() return cray.stats().store.bytes < MiB end, "the spill")
    local p, len = cray.get_buffer(r)
    assert.are.equal(GiB, len)
    assert.are.equal(0, ffi.C.memcmp(p, s, len))
    p = nil
    support.collect()
    eventually(function() return cray.stats().store.bytes < MiB end, "the spill")
    assert.is_true(cray.get(r) == s)
    assert.are.equal(2, cray.stats().store.restored_objects)
  end)
end)

describe("a put/get loop", function()
  it("keeps its memory flat over 1,000,000 iterations", function()
    -- In a process of its own, so the heap measured is the loop's; ASan's quarantine of
    -- freed memory would count as growth, so it is turned off there.
    local status, out, err = support.crayrun("-", [[
      local function rss()
        local f = io.open("/proc/self/statm")
        f:read("*n")
        local pages = f:read("*n")
        f:close()
        return pages * 4096
      end
      local put, get = cray.put, cray.get
      for i = 1, 100000 do assert(get(put(i)) == i) end
      collectgarbage()
      local before = rss()
      for i = 1, 1000000 do
        if get(put(i)) ~= i then error("wrong value at " .. i) end
      end
      collectgarbage()
      local s = cray.stats().store
      print(rss() - before, s.objects, s.puts)
    ]], {ASAN_OPTIONS = "quarantine_size_mb=0"})
    assert.are.equal(0, status, err)
    local growth, objects, puts = out:match("^(%-?%d+)\t(%d+)\t(%d+)")
    assert.is_true(tonumber(growth) < 8 * MiB, "RSS grew by " .. growth .. " bytes")
    assert.are.equal(0, tonumber(objects))
    assert.are.equal(1100000, tonumber(puts))
  end)
end)

describe("tasks under the budget", function()
  after_each(function() support.collect() end)

  it("count a task's arguments in memory while it holds them", function()
    cray = support.fresh({workers = 1, memory = "64M"})
    local gate = cray.remote(function() cray.sleep(0.2) end).remote()
    local len = cray.remote(function(_, s) return #s end)
    local r = len.remote(gate, pattern(1, 4 * MiB))
    assert.is_true(cray.stats().store.bytes >= 4 * MiB)
    assert.are.equal(4 * MiB, cray.get(r))
    gate, r = nil, nil
    support.collect()
    -- what stays is the remote functions' code, kept until shutdown
    eventually(function() return cray.stats().store.bytes < MiB end, "the frees")
  end)

  it("spill tasks' results past the budget and read them back byte-exact", function()
    cray = support.fresh({workers = 2, memory = "8M"})
    local make = cray.remote(function(i) return pattern(i, MiB) end)
    local refs = {}
    for i = 1, 32 do refs[i] = make.remote(i) end
    for i = 1, 32 do cray.wait({refs[i]}) end
    assert.is_true(cray.stats().store.spilled_objects > 0)
    for i = 1, 32 do assert.is_true(cray.get(refs[i]) == pattern(i, MiB), i) end
  end)

  it("store a remote function refused while full once room is made", function()
    cray = support.fresh({workers = 1, memory = "8M", spill_max = "16M"})
    local big = pattern(0, 2 * MiB)
    local f, e
    coroutine.wrap(function()
      local refs = {}
      for i = 1, 200 do
        local ok, r = pcall(cray.put, pattern(i, MiB))
        if not ok then break end
        refs[i] = r
      end
      -- Stored at its first submit, which finds the store full.
      f = cray.remote(function(k) return #big + k end)
      local ok, err = pcall(f.remote, 1)
      assert.is_false(ok, "the function found no room")
      e = err
    end)()
    assert.are.equal("out_of_memory", e.kind)
    support.collect()
    assert.are.equal(2 * MiB + 1, cray.get(f.remote(1)))
    assert.are.equal(2 * MiB + 2, cray.get(f.remote(2)))
  end)

  it("fail a task whose result finds the store full, caused by out_of_memory", function()
    cray = support.fresh({workers = 1, memory = "8M", spill_max = "16M"})
    local make = cray.remote(function(i) return pattern(i, MiB) end)
    local refs, e = {}, nil
    for i = 1, 200 do
      refs[i] = make.remote(i)
      local ok, err = pcall(cray.get, refs[i])
      if not ok then
        e = err
        break
      end
    end
    assert.is_not_nil(e, "a task failed")
    assert.are.equal("task_error", e.kind)
    assert.are.equal("out_of_memory", e.cause.kind)
    has(e.cause.message, "the task's result: out of memory: no room for a 1.0 MiB object")
  end)

  it("let get_buffer wait inside a task without holding its worker", function()
    cray = support.fresh({workers = 1})
    local slow = cray.remote(function() cray.sleep(0.05) return ("z"):rep(5000) end)
    local size = cray.remote(function(box)
      local p, n = cray.get_buffer(box[1])
      return n, require("ffi").string(p, 1)
    end)
    assert.are.same({5000, "z"}, {cray.get(size.remote({slow.remote()}))})
  end)
end)
