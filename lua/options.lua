-- cray.options: checking option tables. Each check returns the value to use, or nil and
-- what it wanted; `check` raises an invalid_argument error naming the call and the option.

local errors = require "cray.errors"

local M = {}

function M.whole(min, max)
  return function(v)
    if type(v) == "number" and v == math.floor(v) and v >= min and (not max or v <= max) then
      return v
    end
    if max then return nil, ("a whole number from %d to %d"):format(min, max) end
    return nil, ("a whole number >= %d"):format(min)
  end
end

function M.of_type(t)
  return function(v)
    if type(v) == t then return v end
    return nil, "a " .. t
  end
end

-- A size in bytes: a number, or a string such as "512M"; parse is core.parse_size.
function M.size(parse)
  return function(v)
    if type(v) == "number" and v >= 0 and v == math.floor(v) then return v end
    if type(v) == "string" then
      local n = parse(v)
      if n then return n end
    end
    return nil, 'a size in bytes, as a number or a string like "512M" or "2G"'
  end
end

-- {name = amount}: amounts above `min` (0 for capacities, which may be 0).
function M.resources(allow_zero)
  return function(v)
    if type(v) == "table" then
      local ok = true
      for name, n in pairs(v) do
        if type(name) ~= "string" or type(n) ~= "number" or n < 0 or (n == 0 and not allow_zero) then
          ok = false
        end
      end
      if ok then return v end
    end
    return nil, ("a table of resource name = amount (a number %s 0)"):format(allow_zero and ">=" or ">")
  end
end

local function show(v)
  return type(v) == "string" and ("%q"):format(v) or tostring(v)
end

-- Checks `opts` against `spec` (name -> check); returns a table of checked values.
-- `level` is the caller's level for the error position, as in error().
function M.check(fn, opts, spec, level)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    errors.raise(level + 1, "invalid_argument", "%s: options must be a table (got %s)", fn,
                 type(opts))
  end
  local out = {}
  for k, v in pairs(opts) do
    local check = spec[k]
    if not check then
      local known = {}
      for name in pairs(spec) do known[#known + 1] = name end
      table.sort(known)
      errors.raise(level + 1, "invalid_argument", "%s: unknown option '%s' (known: %s)", fn,
                   tostring(k), table.concat(known, ", "))
    end
    local value, want = check(v)
    if value == nil then
      errors.raise(level + 1, "invalid_argument", "%s: option '%s' must be %s (got %s)", fn, k,
                   want, show(v))
    end
    out[k] = value
  end
  return out
end

return M
