local support = require "spec.support"
local cray = support.fresh({workers = 1})
local util = require "cray.util"

local doc = support.read("docs/lua-api.md")

-- Whether the page shows a call `prefix.name(`, `prefix:name(` or `prefix.name{`.
local function documented(prefix, sep, name)
  local call = prefix .. sep .. name
  return doc:find(call .. "(", 1, true) ~= nil or doc:find(call .. "{", 1, true) ~= nil
end

local function callable(v)
  local mt = type(v) == "table" and getmetatable(v)
  return type(v) == "function" or (type(mt) == "table" and mt.__call ~= nil)
end

-- The names of the callable fields of t, sorted.
local function functions_of(t)
  local out = {}
  for k, v in pairs(t) do
    if type(k) == "string" and callable(v) and not k:match("^_") then out[#out + 1] = k end
  end
  table.sort(out)
  return out
end

local function undocumented(prefix, sep, t)
  local missing = {}
  for _, name in ipairs(functions_of(t)) do
    if not documented(prefix, sep, name) then missing[#missing + 1] = prefix .. sep .. name end
  end
  return missing
end

describe("docs/lua-api.md", function()
  it("documents every function of cray", function()
    assert.are.same({}, undocumented("cray", ".", cray))
  end)

  it("documents every function of cray.util and of its objects", function()
    assert.are.same({}, undocumented("util", ".", util))
    local A = cray.actor{ping = function() return 1 end}
    local pool = util.ActorPool{A.remote()}
    assert.are.same({}, undocumented("pool", ":", getmetatable(pool).__index))
    assert.are.same({}, undocumented("q", ":", util.Queue))
    local sup = util.Supervisor{children = {{class = A}}}
    assert.are.same({}, undocumented("sup", ":", getmetatable(sup).__index))
    sup:stop()
  end)

  it("documents only functions that exist", function()
    local missing = {}
    for path in doc:gmatch("`cray%.([%w_%.]+)%(") do
      local v = cray
      for part in path:gmatch("[^.]+") do v = type(v) == "table" and v[part] or nil end
      if not callable(v) then missing[#missing + 1] = "cray." .. path end
    end
    for name in doc:gmatch("`util%.([%w_]+)[%({]") do
      if not callable(util[name]) then missing[#missing + 1] = "util." .. name end
    end
    assert.are.same({}, missing)
  end)
end)
