-- cray.errors: error objects, the values every cray failure raises.
--
-- An error object is a table with `kind` (task_error, actor_died, cancelled, timeout,
-- object_lost, serialization, out_of_memory, deadlock, invalid_argument, runtime),
-- `message`, and when known `traceback`, `task`, `cause` (the error it propagated from),
-- `value` (a raised value that was not a string) and `waited_at` (the "file:line" of the
-- get that raised it where it was waited for). The C half makes them with this metatable
-- too, so `pcall` hands the same kind of value whoever raised it.
--
-- Printed, an error that propagated through tasks reads from its root cause: that error
-- in full (message, task, traceback), then one line per task it failed in turn, then the
-- line that waited for the last of them.

local Error = {}
Error.__index = Error

local function indent(text, prefix)
  return prefix .. tostring(text):gsub("\n", "\n" .. prefix)
end

-- The chain from e to its root cause: {e, e.cause, e.cause.cause, ...}.
local function chain_of(e)
  local chain = {e}
  while getmetatable(chain[#chain].cause) == Error and #chain < 10000 do
    chain[#chain + 1] = chain[#chain].cause
  end
  return chain
end

-- One line for an error that failed because of its cause.
local function stage_line(e)
  local failed = e.task ~= nil and ("task '%s' failed: "):format(tostring(e.task))
  local msg = tostring(e.message)
  local line = failed and msg:sub(1, #failed) == failed and failed:sub(1, -3)
               or ("%s: %s"):format(tostring(e.kind), msg:match("^[^\n]*"))
  if e.cause.waited_at ~= nil then line = line .. ", waiting at " .. tostring(e.cause.waited_at) end
  return "    " .. line
end

function Error.__tostring(e)
  local chain = chain_of(e)
  local root = chain[#chain]
  local out = {("cray %s error: %s"):format(tostring(root.kind), tostring(root.message))}
  if root.task ~= nil then out[#out + 1] = "  in task: " .. tostring(root.task) end
  if root.value ~= nil then out[#out + 1] = "  raised value: " .. tostring(root.value) end
  if root.traceback ~= nil and root.traceback ~= "" then
    out[#out + 1] = indent(root.traceback, "  ")
  end
  if #chain > 1 then
    out[#out + 1] = "  which failed in turn:"
    for i = #chain - 1, 1, -1 do out[#out + 1] = stage_line(chain[i]) end
  end
  if e.waited_at ~= nil then out[#out + 1] = "  waited for at " .. tostring(e.waited_at) end
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
-- strings: that of the first frame from `level` up outside cray's chunks, so that it
-- points at the user's line (none when that frame is a C function such as pcall, as with
-- error()). Its traceback starts there too.
function M.raise(level, kind, fmt, ...)
  local msg = select("#", ...) > 0 and fmt:format(...) or fmt
  local at = level + 1
  local info = debug.getinfo(at, "Sl")
  while info and info.source:sub(1, #CHUNK_PREFIX) == CHUNK_PREFIX do
    at = at + 1
    info = debug.getinfo(at, "Sl")
  end
  local where = ""
  if info and info.currentline > 0 then
    where = ("%s:%d: "):format(info.short_src, info.currentline)
  elseif not info then
    at = level + 1
  end
  local traceback = debug.traceback("", at):sub(2)
  if not traceback:find("\n", 1, true) then traceback = "" end -- the header alone
  error(M.new(kind, where .. msg, {traceback = traceback}), 0)
end

-- The error object of a task that raised `value`, with the task's traceback. A cray error
-- raised inside the task (a failed get, say) becomes the cause; a value that is not a
-- string travels as `value`.
function M.from_raised(value, traceback, task)
  local fields = {traceback = traceback, task = task}
  if getmetatable(value) == Error then
    fields.cause = value
    local chain = chain_of(value)
    return M.new("task_error", ("task '%s' failed: %s"):format(task,
                                                                tostring(chain[#chain].message)),
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
