local support = require "spec.support"
local cray = support.fresh({workers = 2})

local dir

local function scratch()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p " .. d) == 0)
  return d
end

describe("cray.fs", function()
  before_each(function()
    cray = support.fresh({workers = 2})
    dir = scratch()
  end)
  after_each(function() os.execute("rm -rf " .. dir) end)

  it("writes, appends and reads a file back, bytes as they are", function()
    local path = dir .. "/a.bin"
    local data = "line\n\0binary\255"
    assert.is_true(cray.fs.write_file(path, data))
    assert.is_true(cray.fs.append_file(path, "+more"))
    assert.are.equal(data .. "+more", cray.fs.read_file(path))
    assert.is_true(cray.fs.write_file(path, "short"))
    assert.are.equal("short", cray.fs.read_file(path)) -- write replaces
  end)

  it("reads a file larger than one chunk", function()
    local path = dir .. "/big"
    local big = string.rep("0123456789", 100000)
    cray.fs.write_file(path, big)
    assert.are.equal(big, cray.fs.read_file(path))
  end)

  it("stats files and directories", function()
    local path = dir .. "/f"
    cray.fs.write_file(path, "12345")
    local st = cray.fs.stat(path)
    assert.are.equal(5, st.size)
    assert.are.equal("file", st.type)
    assert.is_true(st.mtime > 1e9)
    assert.is_true(st.mode > 0 and st.mode <= 4095)
    assert.are.equal("directory", cray.fs.stat(dir).type)
  end)

  it("lists a directory's names, sorted, without . and ..", function()
    for _, name in ipairs{"b", "a", "c"} do cray.fs.write_file(dir .. "/" .. name, name) end
    assert.are.same({"a", "b", "c"}, cray.fs.list_dir(dir))
  end)

  it("renames and removes", function()
    cray.fs.write_file(dir .. "/old", "x")
    assert.is_true(cray.fs.rename(dir .. "/old", dir .. "/new"))
    assert.are.same({"new"}, cray.fs.list_dir(dir))
    assert.is_true(cray.fs.remove(dir .. "/new"))
    assert.are.same({}, cray.fs.list_dir(dir))
  end)

  it("works inside tasks and actors, many at once", function()
    local write = cray.remote(function(path, i)
      cray.fs.write_file(path, tostring(i))
      return tonumber(cray.fs.read_file(path))
    end)
    local refs = {}
    for i = 1, 50 do refs[i] = write.remote(dir .. "/n" .. i, i) end
    local got = cray.get(refs)
    for i = 1, 50 do assert.are.equal(i, got[i]) end
    local Lister = cray.actor{ count = function(self, d) return #cray.fs.list_dir(d) end }
    assert.are.equal(50, cray.get(Lister.remote().count.remote(dir)))
  end)

  it("errors name the path and the system error", function()
    local missing = dir .. "/missing"
    local e = support.error_of(cray.fs.read_file, missing)
    assert.are.equal("io_error", e.kind)
    assert.matches("cray.fs.read_file: " .. missing .. ": no such file or directory (ENOENT)",
                   e.message, 1, true)
    assert.matches("cray.fs.list_dir: " .. missing .. ": no such file or directory",
                   support.error_of(cray.fs.list_dir, missing).message, 1, true)
    assert.matches("cray.fs.remove: " .. missing,
                   support.error_of(cray.fs.remove, missing).message, 1, true)
    assert.matches("cray.fs.stat: " .. missing,
                   support.error_of(cray.fs.stat, missing).message, 1, true)
    assert.matches("cray.fs.write_file: " .. missing .. "/x: no such file or directory",
                   support.error_of(cray.fs.write_file, missing .. "/x", "").message, 1, true)
    cray.fs.write_file(dir .. "/f", "")
    assert.matches("cray.fs.rename: " .. missing .. "/y: no such file or directory",
                   support.error_of(cray.fs.rename, dir .. "/f", missing .. "/y").message, 1, true)
    assert.matches("illegal operation on a directory (EISDIR)",
                   support.error_of(cray.fs.read_file, dir).message, 1, true)
  end)

  it("rejects bad arguments", function()
    assert.matches("cray.fs.read_file: path must be a non%-empty string",
                   support.error_of(cray.fs.read_file, nil).message)
    assert.matches("cray.fs.write_file: data must be a string",
                   support.error_of(cray.fs.write_file, dir .. "/x", 5).message)
    assert.matches("cray.fs.rename: new path must be a non%-empty string",
                   support.error_of(cray.fs.rename, dir .. "/x").message)
  end)
end)
