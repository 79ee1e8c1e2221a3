-- cray.errors: error objects, the values every cray failure raises.
--
-- An error object is a table with `kind` (task_error, actor_died, cancelled, timeout,
-- object_lost, serialization, out_of_memory, deadlock, invalid_argument, runtime),
-- `message`, and when known `traceback`, `task`, `cause` (the error it propagated from)
-- and `value` (a raised value that was not a string). The C half makes them with this
-- metatable too, so `pcall` hands the same kind of value whoever raised it.

local Error = {}
Error.__index = Error

local function indent(text, prefix)
  return prefix .. tostring(text):gsub("\n", "\n" .. prefix)
end

function Error.__tostring(e)
  local out = {("cray %s error: %s"):format(tostring(e.kind), tostring(e.message))}
  if e.task ~= nil then out[#out + 1] = "  in task: " .. tostring(e.task) end
  if e.value ~= nil then out[#out + 1] = "  raised value: " .. tostring(e.value) end
  if e.traceback ~= nil and e.traceback ~= "" then
    out[#out + 1] = indent(e.traceback, "  ")
  end
  if e.cause ~= nil then out[#out + 1] = indent("caused by: " .. tostring(e.cause), "  ") end
  return table.concat(out, "\n")
end

local M = {Error = Error}

-- A new error object. `fields` may add traceback, task, cause, value.
function M.new(kind, message, fields)
  local e = {kind = kind, message = message}
  for k, v in pairs(fields or {}) do e[k] = v end
  return setmetatable(e, Error)
end

-- cray's own chunks are named "[cray...]" (bindings/lstate.h, CRAY__CHUNK_PREFIX).
local CHUNK_PREFIX = "=[cray"

-- Raises an error object whose message starts with a position, as error() does for
-- strings: that of the first frame from `level` up that runs the user's Lua code (not a C
-- function, not cray's own), so that it points at the user's line. Its traceback starts
-- there too.
function M.raise(level, kind, fmt, ...)
  local msg = select("#", ...) > 0 and fmt:format(...) or fmt
  local at = level + 1
  local info = debug.getinfo(at, "Sl")
  while info and (info.currentline <= 0 or info.source:sub(1, #CHUNK_PREFIX) == CHUNK_PREFIX) do
    at = at + 1
    info = debug.getinfo(at, "Sl")
  end
  local where = ""
  if info then
    where = ("%s:%d: "):format(info.short_src, info.currentline)
  else
    at = level + 1
  end
  error(M.new(kind, where .. msg, {traceback = debug.traceback("", at):sub(2)}), 0)
end

-- The error object of a task that raised `value`, with the task's traceback. A cray error
-- raised inside the task (a failed get, say) becomes the cause; a value that is not a
-- string travels as `value`.
function M.from_raised(value, traceback, task)
  local fields = {traceback = traceback, task = task}
  if getmetatable(value) == Error then
    fields.cause = value
    return M.new("task_error", ("task '%s' failed: %s"):format(task, tostring(value.message)),
                 fields)
  end
  if type(value) == "string" then return M.new("task_error", value, fields) end
  fields.value = value
  return M.new("task_error", ("task '%s' raised a %s value: %s"):format(task, type(value),
                                                                       tostring(value)), fields)
end

function M.is_error(v)
  return getmetatable(v) == Error
end

return M
