local support = require "spec.support"

local function blocks(path)
  local f = assert(io.open(path))
  local text = f:read("*a")
  f:close()
  local out = {}
  for code in text:gmatch("```lua\n(.-)```") do out[#out + 1] = code end
  return out
end

describe("the examples in the docs", function()
  for _, doc in ipairs{"docs/guide.md", "docs/lua-api.md", "docs/memory.md", "docs/io.md",
                        "docs/observability.md"} do
    for i, code in ipairs(blocks(doc)) do
      it(("%s example %d runs under crayrun"):format(doc, i), function()
        local status, _, err = support.crayrun("-", code)
        assert.are.equal(0, status, err)
      end)
    end
  end
end)

describe("the C examples in docs/c-api.md", function()
  -- Built as a program outside the tree would be, against cray.h alone and libcray.a; an
  -- instrumented libcray.a needs its sanitizer's flags, so that is left to plain runs.
  local it_plain = support.san == "" and it or pending
  it_plain("Hello builds against cray.h and prints what it stored", function()
    local f = assert(io.open("docs/c-api.md"))
    local text = f:read("*a")
    f:close()
    local hello = text:match("## Hello\n\n```c\n(.-)```")
    assert.is_not_nil(hello)
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. dir)
    f = assert(io.open(dir .. "/hello.c", "w"))
    f:write(hello)
    f:close()
    local b = support.build
    local status, _, err = support.run(("cc -std=c11 -I%s/include -o %s/hello %s/hello.c %s/libcray.a "
                                        .. "$(pkg-config --libs luajit libuv lmdb) -lpthread -lm -ldl")
                                       :format(b, dir, dir, b))
    assert.are.equal(0, status, err)
    local out
    status, out, err = support.run(dir .. "/hello")
    assert.are.equal(0, status, err)
    local h = assert(io.open("runtime/cray.h")):read("*a")
    assert.are.equal("hello\ncray " .. h:match('CRAY_VERSION_STRING "([%d.]+)"') .. "\n", out)
    os.execute("rm -rf " .. dir)
  end)
end)
