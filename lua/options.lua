-- cray.options: checking option tables. Each check returns the value to use, or nil, what
-- it wanted and (when the value itself would say too little, as a table does) the part of
-- the value at fault; `check` raises an invalid_argument error naming the call, the
-- option and the value. Each accepts exactly the range that works: docs/lua-api.md lists
-- them.

local errors = require "cray.errors"

local M = {}

-- How messages show a value ("nan", "70000", "a table", "an actor handle"): cray.lua sets
-- it to the C half's cray__describe, so both halves say it alike.
M.show = tostring

local INT_MAX = 2147483647

function M.whole(min, max)
  return function(v)
    if type(v) == "number" and v == math.floor(v) and v >= min and v <= max then return v end
    return nil, ("a whole number from %d to %d"):format(min, max)
  end
end

-- A count of retries or restarts: -1 means "without limit", as in Ray.
function M.count_or_forever(v)
  if v == -1 then return INT_MAX end
  if type(v) == "number" and v == math.floor(v) and v >= 0 and v <= INT_MAX then return v end
  return nil, ("a whole number from 0 to %d, or -1 for no limit"):format(INT_MAX)
end

function M.of_type(t)
  return function(v)
    if type(v) == t then return v end
    return nil, "a " .. t
  end
end

function M.name(v)
  if type(v) == "string" and v ~= "" then return v end
  return nil, "a non-empty string"
end

-- A size in bytes from `min` (shown as `min_text`) to 2^63: a number, or a string such as
-- "512M"; parse is core.parse_size.
function M.size(parse, min, min_text)
  return function(v)
    local n = v
    if type(v) == "string" then n = parse(v) end
    if type(n) == "number" and n == math.floor(n) and n >= min and n <= 2 ^ 63 then return n end
    return nil, ('a size from %s to 2^63 bytes, as a number or a string like "512M" or "2G"')
                :format(min_text)
  end
end

-- {name = amount}: names non-empty strings, amounts finite numbers above 0 (needs) or from
-- 0 (capacities); at most `max_kinds` of them when given.
function M.resources(allow_zero, max_kinds)
  local want = ("a table of resource name = amount (a finite number %s 0)")
               :format(allow_zero and ">=" or ">")
  if max_kinds then want = ("%s, at most %d of them"):format(want, max_kinds) end
  return function(v)
    if type(v) ~= "table" or getmetatable(v) ~= nil then return nil, want end
    local kinds = 0
    for name, n in pairs(v) do
      kinds = kinds + 1
      if type(name) ~= "string" or name == "" or type(n) ~= "number" or n ~= n
         or n == math.huge or n < 0 or (n == 0 and not allow_zero) then
        return nil, want, ("%s = %s"):format(type(name) == "string" and name or M.show(name),
                                             M.show(n))
      end
    end
    if max_kinds and kinds > max_kinds then return nil, want, ("%d resources"):format(kinds) end
    return v
  end
end

-- num_returns: a count from 0 to max, or "streaming" (-2 in the spec bindings/stream.h
-- reads).
function M.num_returns(max)
  local count = M.whole(0, max)
  return function(v)
    if v == "streaming" then return -2 end
    local n = count(v)
    if n then return n end
    return nil, ('a whole number from 0 to %d, or "streaming"'):format(max)
  end
end

-- generator_backpressure: items a streaming task may be ahead of its consumer (-1: no
-- bound, 0 in the spec).
function M.backpressure(v)
  if v == -1 then return 0 end
  if type(v) == "number" and v == math.floor(v) and v >= 1 then return v end
  return nil, "a whole number >= 1, or -1 for no bound"
end

-- num_cpus: a number of CPUs >= 0, which stands for resources.CPU.
function M.cpus(v)
  if type(v) == "number" and v >= 0 then return v end
  return nil, "a number >= 0"
end

-- The resources of checked options `o`: o.resources with CPU = o.num_cpus (when above 0).
-- Raises when both name a different CPU amount.
function M.resources_of(fn, o, level)
  if not o.num_cpus or o.num_cpus == 0 then return o.resources end
  local out = {}
  for name, n in pairs(o.resources or {}) do out[name] = n end
  if out.CPU and out.CPU ~= o.num_cpus then
    errors.raise(level + 1, "invalid_argument",
                 "%s: num_cpus = %g and resources.CPU = %g disagree (give one of them)", fn,
                 o.num_cpus, out.CPU)
  end
  out.CPU = o.num_cpus
  return out
end

-- Checks `opts` against `spec` (name -> check); returns a table of checked values.
-- `level` is the caller's level for the error position, as in error().
function M.check(fn, opts, spec, level)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    errors.raise(level + 1, "invalid_argument", "%s: options must be a table (got %s)", fn,
                 M.show(opts))
  end
  local out = {}
  for k, v in pairs(opts) do
    local check = spec[k]
    if not check then
      local known = {}
      for name in pairs(spec) do known[#known + 1] = name end
      table.sort(known)
      errors.raise(level + 1, "invalid_argument", "%s: unknown option %s (known: %s)", fn,
                   type(k) == "string" and ("'%s'"):format(k) or M.show(k),
                   table.concat(known, ", "))
    end
    local value, want, got = check(v)
    if value == nil then
      errors.raise(level + 1, "invalid_argument", "%s: option '%s' must be %s (got %s)", fn, k,
                   want, got or M.show(v))
    end
    out[k] = value
  end
  return out
end

return M
