-- cray.remote: remote functions. `f = cray.remote(fn, opts)` stores fn once; each
-- `f.remote(...)` submits a task running it in a worker state and returns the refs of
-- its results. f, f.remote and f.options are tables with registered metatables, so a
-- remote function travels inside values and tasks can call it too (recursion included).
-- Returns what lua/actor.lua shares: `stash` (store a value at the next flush), `flush`,
-- `class` (a metatable registered once per state), and `reset` for cray.shutdown.

local errors = require "cray.errors"
local options = require "cray.options"

local raise = errors.raise

return function(cray, core)
  local submit, reserve, fill = core.submit, core.reserve, core.fill

  -- A function is stored when the driver next submits a task or puts a value, not by
  -- cray.remote, so that it can refer to the variable it is assigned to
  -- (`local f; f = cray.remote(function() ... f ... end)`). Until then its reserved ref maps
  -- to it here. Storing all of them at once means no remote function travels (as an
  -- upvalue, an argument or inside a value) before its function is stored.
  -- Classes registered since are published then too, so worker states can load them.
  local unstored = setmetatable({}, {__mode = "k"})
  local labels = setmetatable({}, {__mode = "k"}) -- how errors name them
  local generator -- below
  local DEFAULT_BACKPRESSURE = 256
  local unpublished = {}
  local dirty = false

  -- A function the store had no room for stays unstored, its ref pending, and is tried
  -- again at the next flush; the first error is raised once all were tried.
  local function flush()
    dirty = false
    for name, mt in pairs(unpublished) do
      unpublished[name] = nil
      -- A metatable that cannot be stored stays in this state only; a worker that meets
      -- the class says so.
      pcall(core.publish_class, name, mt)
    end
    local failure
    for ref, fn in pairs(unstored) do
      local err = fill(ref, fn, labels[ref])
      if not (err and err.kind == "out_of_memory") then unstored[ref] = nil end
      failure = failure or err
    end
    dirty = next(unstored) ~= nil
    if failure then error(failure, 0) end
  end

  -- The metatables, registered once per state (loading the module again reuses them).
  local function flush_if_dirty()
    if dirty then flush() end
  end

  -- A reserved ref that the value fills at the next flush; errors name it by `label`.
  local function stash(value, label)
    local ref = reserve()
    unstored[ref] = value
    labels[ref] = label
    dirty = true
    return ref
  end

  -- The metatables this module and lua/actor.lua register in every state they load in.
  local own = {}

  local function class(name)
    own[name] = true
    return cray.register_class(name, core.classes[name] or {})
  end
  local RemoteFunction = class("cray.RemoteFunction")
  local Caller = class("cray.RemoteCaller")
  local Options = class("cray.RemoteOptions")

  local task_options = {
    num_returns = options.num_returns(core.max_returns),
    generator_backpressure = options.backpressure,
    max_retries = options.count_or_forever,
    retry_exceptions = function(v)
      if type(v) == "boolean" or type(v) == "function" then return v end
      if type(v) == "table" and #v > 0 then
        for i = 1, #v do
          if type(v[i]) ~= "string" then return nil, "a list of error kinds (strings)" end
        end
        return v
      end
      return nil, "a boolean, a list of error kinds or a function of the error"
    end,
    resources = options.resources(false, core.max_needs),
    name = options.name,
    num_cpus = options.cpus,
    node = options.whole(0, 65535),
  }

  -- A function of the error that is true when its kind, the kind of an error in its cause
  -- chain, or the `kind` field of a raised table is one of kinds.
  local function kinds_filter(kinds)
    local want = {}
    for _, k in ipairs(kinds) do want[k] = true end
    return function(e)
      while type(e) == "table" do
        if want[e.kind] or (type(e.value) == "table" and want[e.value.kind]) then return true end
        e = e.cause
      end
      return false
    end
  end

  -- retry_exceptions as bindings/task.c reads it: a boolean, or the ref of a filter.
  local function retry_spec(v)
    if type(v) == "table" then v = kinds_filter(v) end
    if type(v) == "function" then return stash(v) end
    return v or false
  end

  -- `fn` names the call that made the options, for errors.
  -- A streaming task's refs: `for ref in gen do` gives each value's ref as it is produced,
  -- then, when the task failed, one more whose get raises its error. gen.ref is the
  -- task's return, resolved when it ends. It holds the stream, so it does not travel.
  local Generator = {}
  Generator.__index = Generator
  local stream_next, wait = core.stream_next, cray.wait

  function Generator.__call(g)
    if g.over then return nil end
    while true do
      local ref, more = stream_next(g.stream, g.ref)
      if ref ~= nil then
        if more == true then g.over = true end
        return ref
      end
      if more == nil then
        g.over = true
        return nil
      end
      wait({more, g.ref})
    end
  end

  function Generator.__tostring(g)
    return "ObjectRefGenerator(" .. g.ref:hex() .. ")"
  end

  generator = function(ref, stream)
    return setmetatable({ref = ref, stream = stream}, Generator)
  end

  function cray.is_generator(v)
    return getmetatable(v) == Generator
  end

  -- cray.cancel(ref or generator, ...): a generator's task stops at its next yield.
  local cancel = cray.cancel
  function cray.cancel(x, ...)
    if getmetatable(x) == Generator then x = x.ref end
    return cancel(x, ...)
  end

  -- `fn` names the call that made the options, for errors.
  local function make(ref, opts, fn)
    -- The spec is what bindings/task.c reads: {num_returns, max_retries,
    -- retry_exceptions, name, resources, generator_backpressure, node}; num_returns -1
    -- means one ref for every value, -2 streaming; node -1 this rank.
    local spec = {opts.num_returns or -1, opts.max_retries or 3, retry_spec(opts.retry_exceptions),
                  opts.name, options.resources_of(fn, opts, 3),
                  opts.generator_backpressure or DEFAULT_BACKPRESSURE, opts.node or -1}
    local caller = setmetatable({ref = ref, spec = spec}, Caller)
    return setmetatable({remote = caller, options = setmetatable({ref = ref, opts = opts}, Options)},
                        RemoteFunction)
  end

  local function colon_misuse(first, field, self)
    return first ~= nil and getmetatable(first) == RemoteFunction and rawequal(first[field], self)
  end

  function Caller.__call(self, ...)
    if colon_misuse(..., "remote", self) then
      raise(2, "invalid_argument",
            "call %s.remote(...) with a dot: f:remote(...) passes f itself as the first argument",
            tostring(self.spec[4] or "f"))
    end
    if dirty then flush() end
    if self.spec[1] == -2 then return generator(submit(self.ref, self.spec, ...)) end
    return submit(self.ref, self.spec, ...)
  end

  function RemoteFunction.__call(f)
    raise(2, "invalid_argument", "call f.remote(...) to run remote function '%s' as a task, "
          .. "not f(...)", tostring(f.remote.spec[4]))
  end

  function Options.__call(self, opts)
    if colon_misuse(opts, "options", self) then
      raise(2, "invalid_argument",
            "call f.options{...} with a dot: f:options{...} passes f itself as the options")
    end
    local merged = {}
    for k, v in pairs(self.opts) do merged[k] = v end
    for k, v in pairs(options.check("f.options", opts, task_options, 2)) do merged[k] = v end
    return make(self.ref, merged, "f.options")
  end

  -- cray.remote(fn [, opts]) or cray.remote("module.function" [, opts])
  function cray.remote(fn, opts)
    local o = options.check("cray.remote", opts, task_options, 2)
    if type(fn) == "string" then
      if not fn:match("^[%w_.]+%.[%w_]+$") then
        raise(2, "invalid_argument",
              "cray.remote: name a function as 'module.function' (got %q)", fn)
      end
      o.name = o.name or fn
    elseif type(fn) == "function" then
      if not o.name then
        local info = debug.getinfo(fn, "S")
        o.name = ("%s:%d"):format(info.short_src, info.linedefined)
      end
    else
      raise(2, "invalid_argument",
            "cray.remote: expects a function or a 'module.function' name (got %s)",
            options.show(fn))
    end
    return make(stash(fn, ("remote function '%s'"):format(o.name)), o, "cray.remote")
  end

  function cray.is_remote_function(v)
    return getmetatable(v) == RemoteFunction
  end

  local put = cray.put
  function cray.put(...)
    if dirty then flush() end
    return put(...)
  end

  local register = cray.register_class
  function cray.register_class(name, mt)
    if type(name) == "string" and type(mt) == "table" then
      unpublished[name] = mt
      dirty = true
    end
    return register(name, mt)
  end

  -- For cray.shutdown: functions not stored yet belong to the runtime that ends; classes
  -- are published again to the next one.
  local function reset()
    unstored = setmetatable({}, {__mode = "k"})
    for name, mt in pairs(core.classes) do
      if type(name) == "string" and not own[name] then unpublished[name] = mt end
    end
    dirty = true
  end

  return {stash = stash, flush = flush_if_dirty, reset = reset, class = class,
          generator = generator, DEFAULT_BACKPRESSURE = DEFAULT_BACKPRESSURE}
end
