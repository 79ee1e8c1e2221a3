-- Every public function and every option, given bad values (nil, NaN, infinities, negative,
-- huge, the wrong type): each is refused with kind invalid_argument, and the message names
-- the function, the option when there is one, and the value as cray shows it.
local support = require "spec.support"
local cray = support.fresh({workers = 2, resources = {db = 2}})

local NAN, INF = 0 / 0, math.huge

-- Candidate values and how a message shows them.
local VALUES = {
  {NAN, "nan"}, {INF, "inf"}, {-INF, "-inf"}, {-1, "-1"}, {0.5, "0.5"}, {1e300, "1e+300"},
  {70000, "70000"}, {"text", '"text"'}, {true, "true"}, {{}, "a table"},
  {print, "a function"}, {coroutine.create(print), "a coroutine"},
}

-- Asserts that fn(...) raises invalid_argument and that its message holds every one of
-- `parts` (plain text).
local function refused(label, parts, fn, ...)
  local ok, e = pcall(fn, ...)
  assert.is_false(ok, label .. ": accepted")
  assert.is_true(cray.is_error(e), label .. ": raised " .. tostring(e))
  assert.are.equal("invalid_argument", e.kind, label)
  for _, part in ipairs(parts) do
    assert.is_truthy(e.message:find(part, 1, true),
                     ("%s: %q lacks %q"):format(label, e.message, part))
  end
end

local f = cray.remote(function(x) return x end)
local A = cray.actor{__name = "Probe", get = function() return 1 end}
local h = A.remote()

-- What a count of retries or restarts accepts among VALUES: -1 means no limit.
local COUNT = {["-1"] = true, ["70000"] = true}

-- {the function as messages name it, call with the option table, option, the values of
-- VALUES that it accepts (by how they show)}
local OPTIONS = {
  {"cray.init", cray.init, "workers", {}},
  {"cray.init", cray.init, "memory", {["70000"] = true}},
  {"cray.init", cray.init, "spill_max", {["70000"] = true}},
  {"cray.init", cray.init, "worker_memory", {}},
  {"cray.init", cray.init, "task_memory", {["70000"] = true}},
  {"cray.init", cray.init, "spill_dir", {['"text"'] = true}},
  {"cray.init", cray.init, "ignore_reinit_error", {["true"] = true}},
  {"cray.init", cray.init, "tag_output", {["true"] = true}},
  {"cray.remote", function(o) return cray.remote(print, o) end, "num_returns", {}},
  {"cray.remote", function(o) return cray.remote(print, o) end, "max_retries", COUNT},
  {"cray.remote", function(o) return cray.remote(print, o) end, "retry_exceptions",
   {["true"] = true, ["a function"] = true}},
  {"cray.remote", function(o) return cray.remote(print, o) end, "name", {['"text"'] = true}},
  {"f.options", f.options, "num_returns", {}},
  {"f.options", f.options, "max_retries", COUNT},
  {"f.options", f.options, "name", {['"text"'] = true}},
  {"cray.actor", function(o) return cray.actor({}, o) end, "max_restarts", COUNT},
  {"Probe.options", A.options, "name", {['"text"'] = true}},
  {"Probe.options", A.options, "get_if_exists", {["true"] = true}},
  {"Probe.options", A.options, "max_restarts", COUNT},
  {"Probe.options", A.options, "max_task_retries", COUNT},
  {"Probe.options", A.options, "max_concurrency", {["70000"] = true}},
  {"Probe.get.options", h.get.options, "num_returns", {}},
  {"cray.kill", function(o) return cray.kill(h, o) end, "no_restart", {["true"] = true}},
  {"cray.get", function(o) return cray.get(cray.put(1), o) end, "timeout",
   {["inf"] = true, ["0.5"] = true, ["1e+300"] = true, ["70000"] = true}},
  {"cray.wait", function(o) return cray.wait({cray.put(1)}, o) end, "timeout",
   {["inf"] = true, ["0.5"] = true, ["1e+300"] = true, ["70000"] = true}},
  {"cray.wait", function(o) return cray.wait({cray.put(1)}, o) end, "num_returns", {}},
  {"cray.get_buffer", function(o) return cray.get_buffer(cray.put("x"), o) end, "timeout",
   {["inf"] = true, ["0.5"] = true, ["1e+300"] = true, ["70000"] = true}},
  {"cray.as_completed", function(o) return cray.as_completed({cray.put(1)}, o) end, "timeout",
   {["inf"] = true, ["0.5"] = true, ["1e+300"] = true, ["70000"] = true}},
}

-- Resource tables, bad for needs and capacities alike, and how messages show them.
local RESOURCES = {
  {{db = NAN}, "db = nan"}, {{db = INF}, "db = inf"}, {{db = -1}, "db = -1"},
  {{db = "two"}, 'db = "two"'}, {{[""] = 1}, " = 1"}, {{[7] = 1}, "7 = 1"},
  {"db", '"db"'},
}
local RESOURCE_OPTIONS = {
  {"cray.init", cray.init}, {"cray.remote", function(o) return cray.remote(print, o) end},
  {"f.options", f.options}, {"cray.actor", function(o) return cray.actor({}, o) end},
  {"Probe.options", A.options},
}

describe("bad values", function()
  it("are refused for every option, naming the function, the option and the value", function()
    local tried = 0
    for _, case in ipairs(OPTIONS) do
      local fn, call, option, accepted = case[1], case[2], case[3], case[4]
      for _, v in ipairs(VALUES) do
        if not accepted[v[2]] then
          tried = tried + 1
          refused(("%s{%s = %s}"):format(fn, option, v[2]),
                  {fn .. ": option '" .. option .. "'", "(got " .. v[2] .. ")"},
                  call, {[option] = v[1]})
        end
      end
    end
    assert.is_true(tried > 200)
  end)

  it("are refused in resource tables, showing the entry at fault", function()
    for _, case in ipairs(RESOURCE_OPTIONS) do
      for _, r in ipairs(RESOURCES) do
        refused(case[1] .. " resources " .. r[2],
                {case[1] .. ": option 'resources'", "(got " .. r[2] .. ")"}, case[2],
                {resources = r[1]})
      end
    end
  end)

  it("are refused in place of an options table, and unknown options are named", function()
    for _, case in ipairs(OPTIONS) do
      refused(case[1] .. " options", {case[1] .. ": options must be a table (got \"fast\")"},
              case[2], "fast")
      refused(case[1] .. " unknown", {case[1] .. ": unknown option 'colour'"}, case[2],
              {colour = 1})
    end
  end)

  it("are refused as the arguments of every function, naming the function and the value", function()
    local ARGS = {
      {"cray.get", cray.get}, {"cray.wait", cray.wait}, {"cray.get_buffer", cray.get_buffer},
      {"cray.cancel", cray.cancel}, {"cray.as_completed", cray.as_completed},
      {"cray.kill", cray.kill}, {"cray.monitor", cray.monitor}, {"cray.sleep", cray.sleep},
      {"cray.remote", cray.remote}, {"cray.actor", cray.actor}, {"cray.ref", cray.ref},
      {"cray.get_actor", cray.get_actor},
      {"cray.register_class", function(v) return cray.register_class(v, {}) end},
      {"cray.register_class", function(v) return cray.register_class("spec.Bad", v) end},
    }
    -- what each accepts among VALUES and nil
    local accepts = {
      ["cray.get"] = {["a table"] = true}, -- an empty array of refs
      ["cray.wait"] = {["a table"] = true},
      ["cray.as_completed"] = {["a table"] = true},
      ["cray.sleep"] = {inf = true, ["0.5"] = true, ["1e+300"] = true, ["70000"] = true},
      ["cray.get_actor"] = {['"text"'] = true}, -- a name: refused as unknown instead
      ["cray.actor"] = {["a table"] = true},
      ["cray.remote"] = {["a function"] = true},
    }
    for i, case in ipairs(ARGS) do
      local ok_values = accepts[case[1]] or {}
      if i == #ARGS - 1 then ok_values = {['"text"'] = true} end
      if i == #ARGS then ok_values = {["a table"] = true} end
      refused(case[1] .. "(nil)", {case[1] .. ":", "(got nil)"}, case[2], nil)
      for _, v in ipairs(VALUES) do
        if not ok_values[v[2]] then
          refused(("%s(%s)"):format(case[1], v[2]), {case[1] .. ":", "(got " .. v[2] .. ")"},
                  case[2], v[1])
        end
      end
    end
  end)

  it("are refused when a call takes none, or outside an actor's method", function()
    refused("cray.put()", {"cray.put: takes exactly one value (got 0)"}, cray.put)
    refused("cray.put(1, 2)", {"cray.put: takes exactly one value (got 2)"}, cray.put, 1, 2)
    refused("cray.self()", {"cray.self: only an actor's method can call it"}, cray.self)
    refused("cray.exit_actor()", {"cray.exit_actor: only an actor's method can call it"},
            cray.exit_actor)
    refused("cray.ref(hex)", {[[cray.ref: expects an id as 32 hex digits, as ref:hex() gives ]]
                              .. [[(got "0123")]]}, cray.ref, "0123")
  end)

  it("name cray's own values by what they are when they are passed where refs go", function()
    for _, v in ipairs{{f, "a remote function"}, {h, "an actor handle"},
                       {h.get, "an actor method"}, {A, "an actor class"},
                       {f.remote, "a remote function's .remote"}} do
      refused("cray.get(" .. v[2] .. ")", {"cray.get:", "(got " .. v[2]}, cray.get, v[1])
      refused("cray.wait(" .. v[2] .. ")", {"cray.wait:", "(got " .. v[2]}, cray.wait, v[1])
    end
  end)
end)
