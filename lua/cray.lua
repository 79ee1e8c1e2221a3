-- cray: the public Lua module. The C half (bindings/module.c) hands its functions in as
-- `core`; this file checks options, names things as the documentation does, and adds
-- what is simplest in Lua.

local core = ...
local errors = require "cray.errors"

local raise = errors.raise
local cray = {version = core.version, Error = errors.Error, is_error = errors.is_error}

cray.put = core.put
cray.get = core.get
cray.wait = core.wait
cray.stats = core.stats
cray.get_buffer = core.get_buffer

-- Option tables: each option's check returns the value to use or nil, message.
local function whole(min)
  return function(v)
    if type(v) == "number" and v == math.floor(v) and v >= min then return v end
    return nil, ("a whole number >= %d"):format(min)
  end
end

local function size(v)
  if type(v) == "number" and v >= 0 and v == math.floor(v) then return v end
  if type(v) == "string" then
    local n = core.parse_size(v)
    if n then return n end
  end
  return nil, 'a size in bytes, as a number or a string like "512M" or "2G"'
end

local function of_type(t)
  return function(v)
    if type(v) == t then return v end
    return nil, "a " .. t
  end
end

local function resources(v)
  if type(v) ~= "table" then return nil, "a table of resource name = count" end
  for name, n in pairs(v) do
    if type(name) ~= "string" or type(n) ~= "number" or n < 0 then
      return nil, "a table of resource name = count (count a number >= 0)"
    end
  end
  return v
end

local init_options = {
  workers = whole(1),
  memory = size,
  spill_dir = of_type("string"),
  spill_max = size,
  worker_memory = size,
  resources = resources,
  ignore_reinit_error = of_type("boolean"),
}

-- Checks `opts` against `spec`; returns a table of checked values. Errors name the call.
local function check_options(fn, opts, spec, level)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    raise(level + 1, "invalid_argument", "%s: options must be a table (got %s)", fn, type(opts))
  end
  local out = {}
  for k, v in pairs(opts) do
    local check = spec[k]
    if not check then
      local known = {}
      for name in pairs(spec) do known[#known + 1] = name end
      table.sort(known)
      raise(level + 1, "invalid_argument", "%s: unknown option '%s' (known: %s)", fn,
            tostring(k), table.concat(known, ", "))
    end
    local value, want = check(v)
    if value == nil then
      raise(level + 1, "invalid_argument", "%s: option '%s' must be %s (got %s)", fn, k,
            want, type(v) == "string" and ("%q"):format(v) or tostring(v))
    end
    out[k] = value
  end
  return out
end

function cray.init(opts)
  local o = check_options("cray.init", opts, init_options, 2)
  if core.is_open() and o.ignore_reinit_error then return end
  core.open(o.workers, o.memory, o.spill_dir, o.spill_max, o.worker_memory, o.resources)
end

function cray.shutdown()
  core.close()
end

function cray.is_initialized()
  return core.is_open()
end

-- Lets tables with metatable `mt` travel: they arrive with the metatable registered under
-- the same name in the receiving state.
function cray.register_class(name, mt)
  if type(name) ~= "string" or name == "" then
    raise(2, "invalid_argument", "cray.register_class: name must be a non-empty string")
  end
  if type(mt) ~= "table" then
    raise(2, "invalid_argument", "cray.register_class: metatable must be a table (got %s)",
          type(mt))
  end
  local other = core.classes[name]
  if other ~= nil and other ~= mt then
    raise(2, "invalid_argument", "cray.register_class: '%s' is registered already", name)
  end
  core.classes[name], core.classes[mt] = mt, name
  return mt
end

return cray
