-- cray: the public Lua module. The C half (bindings/module.c, bindings/task.c) hands its
-- functions in as `core`; this file checks options, names things as the documentation
-- does, and adds what is simplest in Lua.

local core = ...
local errors = require "cray.errors"
local options = require "cray.options"

local raise = errors.raise
options.show = core.describe
local cray = {version = core.version, Error = errors.Error, is_error = errors.is_error}

cray.put = core.put
cray.ref = core.ref
cray.stats = core.stats
cray.objects = core.objects
cray.timeline = core.timeline
cray._progress = core._progress -- crayrun's live line (runtime/progress.h)

local cancel_options = {recursive = options.of_type("boolean")}

-- cray.cancel(ref [, {recursive = true}])
function cray.cancel(ref, opts)
  if type(opts) == "table" and opts.force ~= nil then
    raise(2, "invalid_argument",
          "cray.cancel: option 'force' is not supported: tasks run as coroutines on shared "
          .. "worker threads, which cannot be killed; a cancelled task stops at its next "
          .. "wait, or is interrupted while it runs")
  end
  local o = options.check("cray.cancel", opts, cancel_options, 2)
  return core.cancel(ref, o.recursive ~= false)
end

local init_options = {
  workers = options.whole(1, 4096),
  memory = options.size(core.parse_size, 1, "1"),
  spill_dir = options.name,
  spill_max = options.size(core.parse_size, 1, "1"),
  worker_memory = options.size(core.parse_size, core.worker_memory_min, "1M"),
  task_memory = options.size(core.parse_size, 1, "1"),
  resources = options.resources(true),
  tag_output = options.of_type("boolean"),
  ignore_reinit_error = options.of_type("boolean"),
}

function cray.init(opts)
  local o = options.check("cray.init", opts, init_options, 2)
  if core.is_open() and o.ignore_reinit_error then return end
  core.open(o.workers, o.memory, o.spill_dir, o.spill_max, o.worker_memory, o.resources,
            o.task_memory, o.tag_output)
end

local pending -- lua/remote.lua's

function cray.shutdown()
  core.close()
  pending.reset()
end

function cray.is_initialized()
  return core.is_open()
end

-- Lets tables with metatable `mt` travel: they arrive with the metatable registered under
-- the same name in the receiving state.
function cray.register_class(name, mt)
  if type(name) ~= "string" or name == "" then
    raise(2, "invalid_argument", "cray.register_class: name must be a non-empty string (got %s)",
          options.show(name))
  end
  if type(mt) ~= "table" then
    raise(2, "invalid_argument", "cray.register_class: metatable must be a table (got %s)",
          options.show(mt))
  end
  local other = core.classes[name]
  if other ~= nil and other ~= mt then
    raise(2, "invalid_argument", "cray.register_class: '%s' is registered already", name)
  end
  core.classes[name], core.classes[mt] = mt, name
  return mt
end

local function check_seconds(fn, s)
  if type(s) ~= "number" or not (s >= 0) then
    raise(3, "invalid_argument", "%s: seconds must be a number >= 0 (got %s)", fn,
          options.show(s))
  end
end

local now, sleep_until = core.now, core.sleep_until

if not core.in_worker() then
  -- The driver blocks its thread when it waits.
  cray.get = core.get
  cray.wait = core.wait
  cray.get_buffer = core.get_buffer

  function cray.sleep(seconds)
    check_seconds("cray.sleep", seconds)
    sleep_until(now() + seconds)
  end
else
  -- Inside a task, get, get_buffer, wait and sleep yield to the worker; when the coroutine resumes they
  -- receive RETRY and look again, keeping the deadline of their first call.
  local get, get_buffer, wait = core.get, core.get_buffer, core.wait
  local RETRY, isyieldable = core.retry(), coroutine.isyieldable

  local function deadline_of(opts)
    local t = type(opts) == "table" and opts.timeout
    return type(t) == "number" and t >= 0 and now() + t or nil
  end

  local function get_again(refs, opts, deadline, first, ...)
    if first ~= RETRY then return first, ... end
    return get_again(refs, opts, deadline, get(refs, opts, deadline, isyieldable()))
  end

  function cray.get(refs, opts)
    local deadline = deadline_of(opts)
    return get_again(refs, opts, deadline, get(refs, opts, deadline, isyieldable()))
  end

  -- A call of fn(x, opts, deadline, yieldable) -> a, b that repeats while a is RETRY.
  local function retrying(fn)
    return function(x, opts)
      local deadline = deadline_of(opts)
      local a, b = fn(x, opts, deadline, isyieldable())
      while a == RETRY do a, b = fn(x, opts, deadline, isyieldable()) end
      return a, b
    end
  end

  cray.get_buffer = retrying(get_buffer)
  cray.wait = retrying(wait)

  function cray.sleep(seconds)
    check_seconds("cray.sleep", seconds)
    local deadline = now() + seconds
    while sleep_until(deadline, isyieldable()) == RETRY do end
  end
end

-- Resources by name (CPU: the workers, unless cray.init named another amount), summed
-- over the job's nodes.
function cray.cluster_resources()
  local _, nodes = core.cluster(true)
  if not nodes then
    local _, total = core.node()
    return total
  end
  local sum = {}
  for _, n in ipairs(nodes) do
    for name, units in pairs(n.resources) do sum[name] = (sum[name] or 0) + units end
  end
  return sum
end

-- The units not held by running tasks and living actors now, summed over the nodes.
function cray.available_resources()
  local free = core.cluster_available()
  if free then return free end
  local _, _, here = core.node()
  return here
end

-- One entry per process of the job (an MPI rank under mpirun; one process alone).
function cray.nodes()
  local _, nodes = core.cluster(true)
  if nodes then return nodes end
  local workers, total, _, host = core.node()
  return {{node = 0, workers = workers, resources = total, host = host, alive = true}}
end

local timeout_option = {timeout = function(v)
  if type(v) == "number" and v >= 0 then return v end
  return nil, "a number of seconds >= 0"
end}

-- for ref in cray.as_completed(refs [, {timeout = s}]): each ref once, in the order they
-- finish (those found finished together, in the order given). Past the timeout, with refs
-- left, the next step raises "timeout".
function cray.as_completed(refs, opts)
  core.check_refs("cray.as_completed", refs)
  local o = options.check("cray.as_completed", opts, timeout_option, 2)
  local left, done, at = {}, {}, 0
  for i = 1, #refs do left[i] = refs[i] end
  local deadline = o.timeout and now() + o.timeout
  return function()
    if at == #done then
      if #left == 0 then return nil end
      local ready = cray.wait(left, {num_returns = 1,
                                     timeout = deadline and math.max(0, deadline - now())})
      if #ready == 0 then
        raise(2, "timeout", "cray.as_completed: timed out after %g s; %d of %d refs not ready",
              o.timeout, #left, #refs)
      end
      done, left = cray.wait(left, {num_returns = #left, timeout = 0})
      at = 0
    end
    at = at + 1
    return done[at]
  end
end

-- os.exit in the driver shuts cray down first (its spill directory goes with it) and closes
-- the state; inside a task or an actor it would end the whole program from a worker
-- thread, so it is refused.
if core.in_worker() then
  function os.exit()
    raise(2, "invalid_argument",
          "os.exit: cannot be called inside a task or an actor; raise an error or return, "
          .. "and let the driver decide")
  end
else
  local exit = os.exit
  function os.exit(code)
    core.release()
    return exit(code, true)
  end
end

pending = require("cray.remote")(cray, core)
require("cray.actor")(cray, core, pending)
require("cray.io")(cray, core, pending)
require("cray.timers")(cray, core, pending)

-- `require "cray.util"` builds lua/util.lua on this module and its C half.
local load_util = package.preload["cray.util"]
package.preload["cray.util"] = function(name) return load_util(name)(cray, core) end

return cray
