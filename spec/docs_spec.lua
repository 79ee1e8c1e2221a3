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
  for _, doc in ipairs{"docs/guide.md", "docs/lua-api.md", "docs/memory.md"} do
    for i, code in ipairs(blocks(doc)) do
      it(("%s example %d runs under crayrun"):format(doc, i), function()
        local status, _, err = support.crayrun("-", code)
        assert.are.equal(0, status, err)
      end)
    end
  end
end)
