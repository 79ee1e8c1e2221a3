-- print inside tasks and actor calls: every line whole, whatever the workers print at
-- once; with --tag-output (cray.init{tag_output = true}) each line names who printed it.
local support = require "spec.support"

-- Tasks on two workers each print `lines` lines of many pieces: "<k> <piece>...<k>".
local CHATTY = [[
local lines, pieces = tonumber(arg[1]), 40
local chatty = cray.remote(function(k)
  local piece = ("%d"):format(k):rep(50)
  for _ = 1, lines do
    local parts = {k}
    for p = 1, pieces do parts[p + 1] = piece end
    parts[pieces + 2] = k
    print(unpack(parts))
  end
  return true
end, {name = "chatty"})
local refs = {}
for k = 1, 4 do refs[k] = chatty.remote(k) end
cray.get(refs)
]]

local function run(body, args, env)
  local path = support.script(body)
  local status, out, err = support.crayrun("-w 2 " .. (args or "") .. " " .. path .. " 300",
                                           nil, env)
  os.remove(path)
  return status, out, err
end

-- Checks that every line is one task's whole line, after a prefix matching the pattern
-- `tag` when given; returns the lines counted per task.
local function check_lines(out, tag)
  local per = {}
  for line in out:gmatch("([^\n]*)\n") do
    local rest = line:match("^" .. (tag or "") .. "(.*)$")
    assert(rest, "a line without its tag: " .. line:sub(1, 80))
    local k = rest:match("^(%d)\t")
    assert(k and rest == k .. ("\t" .. k:rep(50)):rep(40) .. "\t" .. k,
           "a line broken into: " .. line:sub(1, 80))
    per[k] = (per[k] or 0) + 1
  end
  return per
end

describe("print in tasks", function()
  it("writes each line whole while two workers print at once", function()
    local status, out, err = run(CHATTY)
    assert.are.equal(0, status, err)
    assert.are.same({["1"] = 300, ["2"] = 300, ["3"] = 300, ["4"] = 300}, check_lines(out))
  end)

  it("prefixes each line with the task's name and worker with --tag-output", function()
    local status, out, err = run(CHATTY, "--tag-output")
    assert.are.equal(0, status, err)
    assert.are.same({["1"] = 300, ["2"] = 300, ["3"] = 300, ["4"] = 300},
                    check_lines(out, "%(chatty w[01]%) "))
  end)

  it("tags every line of a text with newlines, an actor call by Class.method", function()
    local status, out, err = support.crayrun("-w 1 --tag-output -e '" ..
      "local A = cray.actor{__name = \"Greeter\", hello = function() print(\"one\\ntwo\", 3) end} " ..
      "cray.get(A.remote().hello.remote()) print(\"driver\")'")
    assert.are.equal(0, status, err)
    assert.are.equal("(Greeter.hello w0) one\n(Greeter.hello w0) two\t3\ndriver\n", out)
  end)

  it("keeps the text as Lua's print makes it, tostring and all, without --tag-output", function()
    local status, out, err = support.crayrun("-w 1 -e '" ..
      "cray.get(cray.remote(function() " ..
      "  local t = setmetatable({}, {__tostring = function() return \"T\" end}) " ..
      "  print(1, nil, true, t, \"s\") print() end).remote())'")
    assert.are.equal(0, status, err)
    assert.are.equal("1\tnil\ttrue\tT\ts\n\n", out)
  end)

  it("tags with cray.init{tag_output = true}, and refuses a value not a boolean", function()
    local status, out, err = support.crayrun("-e '" ..
      "print(select(2, pcall(cray.init, {tag_output = 1})).message) " ..
      "cray.shutdown() cray.init{workers = 1, tag_output = true} " ..
      "cray.get(cray.remote(function() print(\"hi\") end, {name = \"greet\"}).remote())'")
    assert.are.equal(0, status, err)
    assert.matches("^cray.init: option 'tag_output' must be a boolean[^\n]*\n%(greet w0%) hi\n$", out)
  end)
end)
