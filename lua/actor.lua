-- cray.actor: actor classes and handles. `A = cray.actor(class)` stores the class once;
-- `A.remote(...)` makes an actor (its instance lives in one worker state) and returns a
-- handle; `h.method.remote(...)` calls a method and returns the refs of its results.
-- Classes, handles and methods are tables with registered metatables, so they travel
-- inside values and tasks and actors use them too.

local errors = require "cray.errors"
local options = require "cray.options"

local raise = errors.raise

return function(cray, core, pending)
  local create, call, class_table = core.actor_create, core.actor_call, core.class_table
  local stash, flush, class = pending.stash, pending.flush, pending.class
  local ActorClass = class("cray.ActorClass")
  local Creator = class("cray.ActorCreator")
  local CreatorOptions = class("cray.ActorOptions")
  local Handle = class("cray.ActorHandle")
  local Method = class("cray.ActorMethod")
  local CallOptions = class("cray.ActorCallOptions")

  local actor_options = {
    name = options.name,
    get_if_exists = options.of_type("boolean"),
    max_restarts = options.count_or_forever,
    max_task_retries = options.count_or_forever,
    max_concurrency = options.whole(1, 1000000),
    max_pending_calls = function(v)
      if v == -1 then return 0 end
      if type(v) == "number" and v == math.floor(v) and v >= 1 and v <= 2147483647 then return v end
      return nil, "a whole number >= 1, or -1 for no limit"
    end,
    resources = options.resources(false, core.max_needs),
    num_cpus = options.cpus,
    restart_on_error = options.of_type("boolean"),
    node = options.whole(0, 65535),
  }
  local call_options = {num_returns = options.num_returns(core.max_returns),
                        generator_backpressure = options.backpressure}

  local function misuse(first, field, self, mt)
    return first ~= nil and getmetatable(first) == mt and rawequal(first[field], self)
  end

  -- `fn` names the call that made the options, for errors; `named` is true for a class
  -- named 'module.Class', which only workers load.
  local function make_class(ref, class_name, opts, fn, named)
    if opts.get_if_exists and not opts.name then
      raise(3, "invalid_argument", "%s: option 'get_if_exists' needs option 'name' (the name "
            .. "of the actor to get)", class_name)
    end
    -- The spec is what bindings/actor.c reads: {name, get_if_exists, max_restarts,
    -- max_task_retries, max_concurrency, class name, init's call name, resources,
    -- max_pending_calls (0: no limit), restart_on_error (1 or 0), node (-1: this one),
    -- no_init (1 or 0, or nil until the first creation learns it: see no_init)}.
    local spec = {opts.name or false, opts.get_if_exists and 1 or 0, opts.max_restarts or 0,
                  opts.max_task_retries or 0, opts.max_concurrency or 1, class_name,
                  class_name .. ".init", options.resources_of(fn, opts, 3),
                  opts.max_pending_calls or 0, opts.restart_on_error and 1 or 0, opts.node or -1,
                  named and 0 or nil}
    return setmetatable({
      remote = setmetatable({ref = ref, spec = spec}, Creator),
      options = setmetatable({ref = ref, class_name = class_name, opts = opts, named = named},
                             CreatorOptions),
    }, ActorClass)
  end

  local function handle(actor, cls, class_name)
    return setmetatable({actor, cls, class_name}, Handle)
  end

  -- Under MPI a name is the job's (docs/cluster.md): rank 0 keeps the names. A name is
  -- claimed there before its actor is made, then set to the ref of the actor's handle, put
  -- as a value; a name being made by another rank is asked for again shortly.
  local function create_named(self, name, status, ref, ...)
    while status == "busy" do
      cray.sleep(0.001)
      status, ref = core.actor_name("claim", name)
    end
    if status == "taken" then -- as bindings/actor.c says it in one process
      if self.spec[2] == 1 then return cray.get(ref) end
      error(errors.new("invalid_argument", ("an actor named '%s' exists already (pass "
            .. "get_if_exists = true to get it)"):format(name)), 0)
    end
    if status ~= "mine" then
      raise(3, "runtime", "actor '%s' was not made: the runtime is shutting down", name)
    end
    local ok, actor, cls, class_name = pcall(create, self.ref, self.spec, ...)
    if not ok then
      core.actor_name("drop", name)
      error(actor, 0)
    end
    local h = handle(actor, cls or self.ref, class_name or self.spec[6])
    core.actor_name("set", name, cray.put(h), actor)
    return h
  end

  -- 1 when the class stored at ref is a plain table without init, so that an actor made
  -- with no arguments nor resources needs no init call (bindings/actor.c); else 0; nil
  -- while the class is not stored here yet. It is read from the stored class, as the class
  -- may change until it is stored.
  local function no_init(ref)
    local ok, c = pcall(class_table, ref)
    if not ok then return nil end
    return rawget(c, "init") == nil and getmetatable(c) == nil and 1 or 0
  end

  function Creator.__call(self, ...)
    if misuse(..., "remote", self, ActorClass) then
      raise(2, "invalid_argument",
            "call %s.remote(...) with a dot: A:remote(...) passes A itself to init",
            self.spec[6])
    end
    flush()
    local spec = self.spec
    if spec[12] == nil then spec[12] = no_init(self.ref) end
    local name = spec[1]
    if name then
      local status, ref = core.actor_name("claim", name)
      if status then return create_named(self, name, status, ref, ...) end
    end
    local actor, cls, class_name = create(self.ref, self.spec, ...)
    return handle(actor, cls or self.ref, class_name or self.spec[6])
  end

  function ActorClass.__call(cls)
    raise(2, "invalid_argument", "call A.remote(...) to make an actor of class '%s', not A(...)",
          cls.remote.spec[6])
  end

  function CreatorOptions.__call(self, opts)
    if misuse(opts, "options", self, ActorClass) then
      raise(2, "invalid_argument",
            "call A.options{...} with a dot: A:options{...} passes A itself as the options")
    end
    local merged = {}
    for k, v in pairs(self.opts) do merged[k] = v end
    for k, v in pairs(options.check(self.class_name .. ".options", opts, actor_options, 2)) do
      merged[k] = v
    end
    return make_class(self.ref, self.class_name, merged, self.class_name .. ".options",
                      self.named)
  end

  local function class_name_of(cls)
    local name = rawget(cls, "__name")
    if type(name) == "string" then return name end
    local first = rawget(cls, "init")
    if type(first) ~= "function" then
      for _, v in pairs(cls) do
        if type(v) == "function" then first = v; break end
      end
    end
    if type(first) ~= "function" then return "Actor" end
    local info = debug.getinfo(first, "S")
    return ("Actor(%s:%d)"):format(info.short_src, info.linedefined)
  end

  -- cray.actor(class [, opts]) or cray.actor("module.Class" [, opts])
  function cray.actor(cls, opts)
    local o = options.check("cray.actor", opts, actor_options, 2)
    if type(cls) == "string" then
      if not cls:match("^[%w_.]+%.[%w_]+$") then
        raise(2, "invalid_argument", "cray.actor: name a class as 'module.Class' (got %q)", cls)
      end
      return make_class(stash(cls, ("actor class '%s'"):format(cls)), cls, o, "cray.actor", true)
    elseif type(cls) == "table" then
      if rawget(cls, "init") ~= nil and type(rawget(cls, "init")) ~= "function" then
        raise(2, "invalid_argument", "cray.actor: the class's init must be a function (got %s)",
              options.show(rawget(cls, "init")))
      end
      local name = class_name_of(cls)
      return make_class(stash(cls, ("actor class '%s'"):format(name)), name, o, "cray.actor")
    end
    raise(2, "invalid_argument", "cray.actor: expects a class (a table of methods) or a "
          .. "'module.Class' name (got %s)", options.show(cls))
  end

  -- The call specs of a class's methods, by the class's ref: {num_returns, call name,
  -- where the method's name starts in it, generator_backpressure}. A method found here was checked already.
  local specs = setmetatable({}, {__mode = "k"})

  -- One call spec table for each content in this state, as the C side keeps the specs it
  -- read last by their table (bindings/actor.c): `interned` finds it by its content, and
  -- `canonical` tells it from a copy, such as the codec makes of a method held in a moved
  -- actor's instance or passed in a value, which a call swaps for the state's own.
  local interned = setmetatable({}, {__mode = "v"})
  local canonical = setmetatable({}, {__mode = "k"})

  local function intern(num_returns, name, method_at, backpressure)
    local key = num_returns .. " " .. method_at .. " " .. backpressure .. " " .. name
    local spec = interned[key]
    if not spec then
      spec = {num_returns, name, method_at, backpressure}
      interned[key] = spec
      canonical[spec] = true
    end
    return spec
  end

  -- The state's own table for a method's spec; a spec that is not well formed is returned
  -- as it is, for the C side to refuse.
  local function own(spec)
    if type(spec) ~= "table" then return spec end
    local num_returns, name, method_at, backpressure = spec[1], spec[2], spec[3], spec[4]
    if type(num_returns) ~= "number" or type(name) ~= "string" or type(method_at) ~= "number"
       or type(backpressure) ~= "number" then
      return spec
    end
    return intern(num_returns, name, method_at, backpressure)
  end

  local function spec_of(h, name)
    local cls, class_name = rawget(h, 2), rawget(h, 3)
    local known = specs[cls]
    local spec = known and known[name]
    if spec then return spec end
    if type(name) ~= "string" then
      raise(3, "invalid_argument", "actor %s: a method name must be a string (got %s)", class_name,
            options.show(name))
    end
    if name == "init" then
      raise(3, "invalid_argument",
            "actor class '%s': init is its constructor, run once when the actor is made; "
            .. "it cannot be called", class_name)
    end
    -- A handle from another node may come before its class: wait for it (docs/cluster.md).
    cray.wait({cls})
    if type(class_table(cls)[name]) ~= "function" then
      raise(3, "invalid_argument", "actor class '%s' has no method '%s'", class_name, name)
    end
    spec = intern(-1, class_name .. "." .. name, #class_name + 1, pending.DEFAULT_BACKPRESSURE)
    if not known then
      known = {}
      specs[cls] = known
    end
    known[name] = spec
    return spec
  end

  -- h.method is a method: {actor's ref, call spec}. Its `remote` is itself (so
  -- h.method.remote(...) calls it), its `options` makes another with other options. It is
  -- made at each h.method, checked against the class where the call is written; keep it
  -- (`local incr = h.incr.remote`) to call it in a loop without making it again.
  -- Slot 3 turns true once `remote` is read, so that h:method(...) and h.method(...), which
  -- call the method without it, are told apart from h.method.remote(...) and refused.
  function Method.__index(m, key)
    if key == "remote" then
      rawset(m, 3, true)
      return m
    end
    if key == "options" then return setmetatable({m}, CallOptions) end
  end

  function Handle.__index(h, name)
    return setmetatable({rawget(h, 1), spec_of(h, name), false}, Method)
  end

  function Handle.__call(h)
    raise(2, "invalid_argument", "%s cannot be called: call one of its methods, "
          .. "h.method.remote(...)", tostring(h))
  end

  function Handle.__tostring(h)
    return ("ActorHandle(%s, %s)"):format(rawget(h, 3), tostring(rawget(h, 1)):match("(%x+)%)$") or "?")
  end

  function Handle.__eq(a, b)
    return rawget(a, 1) == rawget(b, 1)
  end

  function Method.__call(self, ...)
    local name = self[2][2]
    if not self[3] then
      local first = ...
      if getmetatable(first) == Handle and rawget(first, 1) == self[1] then
        raise(2, "invalid_argument", "call h.%s.remote(...) to call actor method '%s': h:%s(...) "
              .. "passes the handle itself as the first argument", name:match("[^.]*$"), name,
              name:match("[^.]*$"))
      end
      raise(2, "invalid_argument", "call h.%s.remote(...) to call actor method '%s', not "
            .. "h.%s(...)", name:match("[^.]*$"), name, name:match("[^.]*$"))
    end
    if rawequal(..., self) then
      raise(2, "invalid_argument",
            "call %s.remote(...) with a dot: h.%s:remote(...) passes the method itself as the "
            .. "first argument", name, name:match("[^.]*$"))
    end
    flush()
    local spec = self[2]
    if not canonical[spec] then
      spec = own(spec)
      rawset(self, 2, spec)
    end
    if spec[1] == -2 then return pending.generator(call(self[1], spec, ...)) end
    return call(self[1], spec, ...)
  end

  function CallOptions.__call(self, opts)
    local m = self[1]
    if rawequal(opts, m) then
      raise(2, "invalid_argument",
            "call h.method.options{...} with a dot: h.method:options{...} passes the method "
            .. "itself as the options")
    end
    local base = m[2]
    local o = options.check(base[2] .. ".options", opts, call_options, 2)
    local spec = intern(o.num_returns or base[1], base[2], base[3],
                        o.generator_backpressure or base[4])
    return setmetatable({m[1], spec, false}, Method)
  end

  local function check_handle(fn, h)
    if getmetatable(h) ~= Handle then
      raise(3, "invalid_argument", "%s: expects an actor handle (got %s)", fn, options.show(h))
    end
  end

  function cray.is_actor_handle(v)
    return getmetatable(v) == Handle
  end

  local get_actor_options = {missing_ok = options.of_type("boolean")}

  -- cray.get_actor(name [, {missing_ok = true}]): the named actor's handle; without one,
  -- nil with missing_ok, else an error.
  function cray.get_actor(name, opts)
    if type(name) ~= "string" then
      raise(2, "invalid_argument", "cray.get_actor: expects a name (got %s)", options.show(name))
    end
    local o = options.check("cray.get_actor", opts, get_actor_options, 2)
    local actor, cls, class_name = core.get_actor(name)
    if actor then return handle(actor, cls, class_name) end
    local status, ref = core.actor_name("lookup", name) -- under MPI, rank 0's names
    if status == "found" then return cray.get(ref) end
    if o.missing_ok then return nil end
    raise(2, "invalid_argument", "cray.get_actor: no actor named '%s'", name)
  end

  local list_options = {nodes = options.of_type("boolean")}

  -- cray.list_actors([{nodes = true}]): the names of the named actors alive now (under
  -- MPI, the job's), sorted; with nodes, {name = n, node = k} for each, sorted by name.
  function cray.list_actors(opts)
    local o = options.check("cray.list_actors", opts, list_options, 2)
    local names, nodes = core.actor_names()
    if not o.nodes then
      table.sort(names)
      return names
    end
    local list = {}
    for i, name in ipairs(names) do list[i] = {name = name, node = nodes[i]} end
    table.sort(list, function(a, b) return a.name < b.name end)
    return list
  end

  local kill_options = {no_restart = options.of_type("boolean")}

  -- cray.kill(h [, {no_restart = true}]): restarts instead when no_restart is false and
  -- the actor has restarts left. Killing a dead actor does nothing. true when the actor
  -- was alive (under MPI, as its rank says).
  function cray.kill(h, opts)
    check_handle("cray.kill", h)
    local o = options.check("cray.kill", opts, kill_options, 2)
    return core.actor_kill(rawget(h, 1), o.no_restart == false)
  end

  local monitor_options = {restarts = options.of_type("boolean")}

  -- cray.monitor(h [, {restarts = true}]): a ref that resolves when the actor dies, or
  -- with restarts when it next restarts.
  function cray.monitor(h, opts)
    check_handle("cray.monitor", h)
    local o = options.check("cray.monitor", opts, monitor_options, 2)
    return core.actor_monitor(rawget(h, 1), o.restarts)
  end

  -- The task behind cray.link: waits until a or b dies, then kills the other, or calls
  -- its on_exit(handle, info) when its class has one (it traps exits). An actor that
  -- exited (cray.exit_actor) or ended with the runtime kills nobody.
  local function watch_link(a, b)
    local c = require "cray"
    local ma, mb = c.monitor(a), c.monitor(b)
    local ready = c.wait({ma, mb})
    local dead, other = a, b
    if ready[1] == mb then dead, other = b, a end
    local info = c.get(ready[1])
    if info.reason == "shutdown" then return info.reason end
    if pcall(function() return other.on_exit end) then
      other.on_exit.remote(dead, info)
      return "trapped"
    end
    if info.reason == "exited" then return info.reason end
    c.kill(other)
    return "killed"
  end

  -- cray.link(a, b): when one dies, the other is killed (Erlang's link). Returns the ref of
  -- the watch, which resolves with what it did: "killed", "trapped", "exited", "shutdown".
  function cray.link(a, b)
    check_handle("cray.link", a)
    check_handle("cray.link", b)
    if a == b then raise(2, "invalid_argument", "cray.link: an actor cannot be linked to itself") end
    return cray.remote(watch_link, {name = "cray.link"}).remote(a, b)
  end

  function cray.self()
    return handle(core.actor_self())
  end

  cray.exit_actor = core.actor_exit

  -- cray.context(): what runs here. In the driver only `node` is set.
  function cray.context()
    local task, name, worker, actor, cls, class_name = core.context()
    return {task = task, name = name, worker = worker, node = core.cluster() or 0,
            actor = actor and handle(actor, cls, class_name) or nil}
  end
end
