-- cray.util: utilities written on top of the public API, as Ray's ray.util is.
--
--   ActorPool  a set of actors that work through values, each taking the next when free
--   Queue      a FIFO kept by an actor; its handle is a value that travels to tasks
--   map        a function over an array in chunked tasks, results in order (Pool.map)
--   Supervisor restarts the actors it watches when they die (one_for_one, one_for_all)
--
-- lua/cray.lua loads this file when `require "cray.util"` first runs and hands it the
-- module and its C half, whose reserve and fill make the refs a waiting Queue call holds.

local errors = require "cray.errors"
local options = require "cray.options"

local raise = errors.raise

return function(cray, core)
  local util = {}

  local function check_actors(fn, actors)
    if type(actors) ~= "table" then
      raise(3, "invalid_argument", "%s: expects an array of actor handles (got %s)", fn,
            type(actors))
    end
    for i = 1, #actors do
      if not cray.is_actor_handle(actors[i]) then
        raise(3, "invalid_argument", "%s: actors[%d] is not an actor handle (got %s)", fn, i,
              type(actors[i]))
      end
    end
  end

  local function check_function(fn, f)
    if type(f) ~= "function" then
      raise(3, "invalid_argument", "%s: expects a function (got %s)", fn, type(f))
    end
  end

  local timeout_option = function(v)
    if type(v) == "number" and v >= 0 then return v end
    return nil, "a number of seconds >= 0"
  end

  ---------------------------------------------------------------------------------------
  -- ActorPool: Ray's ray.util.ActorPool. fn(actor, value) calls the actor and returns a
  -- ref; each value goes to an idle actor, or waits for one.

  local ActorPool = {}
  ActorPool.__index = ActorPool

  function util.ActorPool(actors)
    check_actors("util.ActorPool", actors)
    local idle = {}
    for i = 1, #actors do idle[i] = actors[i] end
    return setmetatable({
      idle = idle,      -- actors with nothing to do
      owner = {},       -- ref -> {index, actor} of each submitted value not yet returned
      by_index = {},    -- index -> ref, in submission order
      next_index = 0,   -- index of the next submission
      next_return = 0,  -- index get_next returns next
      waiting = {},     -- {fn, value} submitted while no actor was idle
      waiting_at = 1,
    }, ActorPool)
  end

  function ActorPool:submit(fn, value)
    check_function("pool:submit", fn)
    if #self.idle == 0 then
      self.waiting[#self.waiting + 1] = {fn, value}
      return
    end
    local actor = table.remove(self.idle)
    local ref = fn(actor, value)
    if getmetatable(ref) ~= "ObjectRef" then
      table.insert(self.idle, actor)
      raise(2, "invalid_argument", "pool:submit: fn must return the ref of a call (got %s)",
            type(ref))
    end
    self.owner[ref] = {self.next_index, actor}
    self.by_index[self.next_index] = ref
    self.next_index = self.next_index + 1
  end

  function ActorPool:has_next()
    return next(self.owner) ~= nil
  end

  -- An actor is free again: it takes the oldest waiting value, if any.
  local function give_back(self, actor)
    self.idle[#self.idle + 1] = actor
    local w = self.waiting[self.waiting_at]
    if w then
      self.waiting[self.waiting_at] = nil
      self.waiting_at = self.waiting_at + 1
      self:submit(w[1], w[2])
    end
  end

  local function check_timeout(fn, opts)
    return options.check(fn, opts, {timeout = timeout_option}, 3).timeout
  end

  local function no_more(fn)
    raise(3, "invalid_argument", "%s: no more results (check pool:has_next() first)", fn)
  end

  -- The next result in submission order; waits at most opts.timeout seconds, then raises
  -- "timeout" (the value stays pending).
  function ActorPool:get_next(opts)
    local timeout = check_timeout("pool:get_next", opts)
    if not self:has_next() then no_more("pool:get_next") end
    local ref = self.by_index[self.next_return]
    if not ref then
      raise(2, "invalid_argument",
            "pool:get_next: the next result in order was taken by get_next_unordered")
    end
    if timeout and #cray.wait({ref}, {timeout = timeout}) == 0 then
      raise(2, "timeout", "pool:get_next: no result within %g s", timeout)
    end
    self.by_index[self.next_return] = nil
    self.next_return = self.next_return + 1
    local actor = self.owner[ref][2]
    self.owner[ref] = nil
    give_back(self, actor)
    return cray.get(ref)
  end

  -- The first result to finish, whatever its order.
  function ActorPool:get_next_unordered(opts)
    local timeout = check_timeout("pool:get_next_unordered", opts)
    if not self:has_next() then no_more("pool:get_next_unordered") end
    local refs = {}
    for ref in pairs(self.owner) do refs[#refs + 1] = ref end
    local ready = cray.wait(refs, {num_returns = 1, timeout = timeout})
    if #ready == 0 then
      raise(2, "timeout", "pool:get_next_unordered: no result within %g s", timeout)
    end
    local ref = ready[1]
    local index, actor = self.owner[ref][1], self.owner[ref][2]
    self.owner[ref] = nil
    self.by_index[index] = nil
    if index >= self.next_return then self.next_return = index + 1 end
    give_back(self, actor)
    return cray.get(ref)
  end

  local function map_with(self, fn, values, get, name)
    check_function(name, fn)
    if type(values) ~= "table" then
      raise(3, "invalid_argument", "%s: expects an array of values (got %s)", name, type(values))
    end
    for i = 1, #values do self:submit(fn, values[i]) end
    return function()
      if self:has_next() then return get(self) end
    end
  end

  -- for v in pool:map(fn, values): results in the order of values.
  function ActorPool:map(fn, values)
    return map_with(self, fn, values, self.get_next, "pool:map")
  end

  -- for v in pool:map_unordered(fn, values): results as they finish.
  function ActorPool:map_unordered(fn, values)
    return map_with(self, fn, values, self.get_next_unordered, "pool:map_unordered")
  end

  function ActorPool:has_free()
    return #self.idle > 0 and self.waiting[self.waiting_at] == nil
  end

  -- Takes an idle actor out of the pool (nil when none is free).
  function ActorPool:pop_idle()
    if self:has_free() then return table.remove(self.idle) end
    return nil
  end

  -- Adds an actor to the pool; one that is in it already is refused.
  function ActorPool:push(actor)
    check_actors("pool:push", {actor})
    for _, a in ipairs(self.idle) do
      if a == actor then raise(2, "invalid_argument", "pool:push: the actor is in the pool already") end
    end
    for _, owned in pairs(self.owner) do
      if owned[2] == actor then
        raise(2, "invalid_argument", "pool:push: the actor is in the pool already")
      end
    end
    give_back(self, actor)
  end

  ---------------------------------------------------------------------------------------
  -- Queue: Ray's ray.util.queue.Queue. The items live in an actor; a get on an empty
  -- queue (a put on a full one) waits inside the actor on a reserved ref that the put
  -- (get) that frees it fills, so waiting costs no polling.

  -- The class travels by name ("cray.util.QueueActor"): its methods use `core`, which
  -- exists in each state and does not travel.
  local QueueActor = {}
  util.QueueActor = QueueActor

  function QueueActor:init(maxsize)
    self.maxsize, self.items, self.head, self.tail = maxsize, {}, 1, 0
    self.getters, self.putters = {}, {}  -- reserved refs, oldest first; putters with items
  end

  local function count(self) return self.tail - self.head + 1 end

  local function push_item(self, item)
    self.tail = self.tail + 1
    self.items[self.tail] = item
  end

  local function pop_item(self)
    local item = self.items[self.head]
    self.items[self.head] = nil
    self.head = self.head + 1
    return item
  end

  local function remove(list, x)
    for i = 1, #list do
      if list[i] == x then
        table.remove(list, i)
        return true
      end
    end
    return false
  end

  -- Waits for the reserved ref `ref` in `list` until the timeout (nil: none); a ref that
  -- is filled meanwhile wins over the timeout. Returns whether it was filled.
  local function wait_filled(list, entry, ref, timeout)
    if timeout == 0 or #cray.wait({ref}, {timeout = timeout}) == 0 then
      return not remove(list, entry)
    end
    return true
  end

  -- put(item, block, timeout) -> true, or false when the queue stayed full
  function QueueActor:put(item, block, timeout)
    if #self.getters > 0 then
      core.fill(table.remove(self.getters, 1), {item})
      return true
    end
    if self.maxsize <= 0 or count(self) < self.maxsize then
      push_item(self, item)
      return true
    end
    if not block then return false end
    local entry = {core.reserve(), item}
    self.putters[#self.putters + 1] = entry
    return wait_filled(self.putters, entry, entry[1], timeout)
  end

  -- get(block, timeout) -> true, item; or false when the queue stayed empty
  function QueueActor:get(block, timeout)
    if count(self) > 0 then
      local item = pop_item(self)
      local p = table.remove(self.putters, 1)
      if p then
        push_item(self, p[2])
        core.fill(p[1], true)
      end
      return true, item
    end
    if not block then return false end
    local ref = core.reserve()
    self.getters[#self.getters + 1] = ref
    if not wait_filled(self.getters, ref, ref, timeout) then return false end
    return true, cray.get(ref)[1]
  end

  function QueueActor:size() return count(self) end

  -- util.Queue is the class: calling it makes a queue. A queue's metatable is registered
  -- as "cray.util.Queue" so queues travel; its __index finds the methods through require
  -- in whichever state it is used, so the metatable itself holds no methods to copy.
  local Queue = {}
  local queue_mt = cray.register_class("cray.util.Queue", core.classes["cray.util.Queue"] or {})
  queue_mt.__index = function(_, k) return require("cray.util").Queue[k] end

  local queue_options = {
    maxsize = options.whole(0, 2147483647),
    actor_options = function(v)
      if type(v) == "table" then return v end
      return nil, "a table of actor options"
    end,
  }

  -- util.Queue{maxsize = n, actor_options = {...}}: maxsize 0 (the default) has no bound.
  local function new_queue(_, opts)
    local o = options.check("util.Queue", opts, queue_options, 2)
    local cls = cray.actor("cray.util.QueueActor", {max_concurrency = 1000000})
    if o.actor_options then cls = cls.options(o.actor_options) end
    return setmetatable({actor = cls.remote(o.maxsize or 0), maxsize = o.maxsize or 0}, queue_mt)
  end
  util.Queue = setmetatable(Queue, {__call = new_queue})

  local put_options = {block = options.of_type("boolean"), timeout = timeout_option}

  local function full_or_empty(what, fn, timeout)
    if timeout then
      raise(3, what, "%s: the queue stayed %s for %g s", fn, what, timeout)
    end
    raise(3, what, "%s: the queue is %s", fn, what)
  end

  -- q:put(item [, {block = true, timeout = s}]): waits while the queue is full, at most
  -- timeout seconds; raises an error of kind "full" when it stays full (at once with
  -- block = false).
  function Queue:put(item, opts)
    local o = options.check("q:put", opts, put_options, 2)
    local block = o.block ~= false
    if not cray.get(self.actor.put.remote(item, block, o.timeout)) then
      full_or_empty("full", "q:put", block and o.timeout)
    end
  end

  -- q:get([{block = true, timeout = s}]) -> item: waits while the queue is empty; raises
  -- an error of kind "empty" when it stays empty.
  function Queue:get(opts)
    local o = options.check("q:get", opts, put_options, 2)
    local block = o.block ~= false
    local ok, item = cray.get(self.actor.get.remote(block, o.timeout))
    if not ok then full_or_empty("empty", "q:get", block and o.timeout) end
    return item
  end

  function Queue:put_nowait(item) return self:put(item, {block = false}) end
  function Queue:get_nowait() return self:get({block = false}) end
  function Queue:size() return cray.get(self.actor.size.remote()) end
  function Queue:empty() return self:size() == 0 end
  function Queue:full() return self.maxsize > 0 and self:size() >= self.maxsize end

  -- Ends the queue's actor; calls after it fail with "actor_died".
  function Queue:shutdown() cray.kill(self.actor) end

  ---------------------------------------------------------------------------------------
  -- map: fn over values in tasks of `chunk` values each, results in order.

  local map_options = {chunk = options.whole(1, 2147483647)}

  local function apply(fn, chunk)
    local out = {}
    for i = 1, #chunk do out[i] = fn(chunk[i]) end
    return out
  end

  function util.map(fn, values, opts)
    check_function("util.map", fn)
    if type(values) ~= "table" then
      raise(2, "invalid_argument", "util.map: expects an array of values (got %s)", type(values))
    end
    local o = options.check("util.map", opts, map_options, 2)
    local n = #values
    -- As Pool.map: about four chunks per worker.
    local size = o.chunk or math.max(1, math.ceil(n / (4 * cray.stats().workers)))
    local task = cray.remote(apply, {name = "util.map"})
    local refs = {}
    for first = 1, n, size do
      local chunk = {}
      for i = first, math.min(n, first + size - 1) do chunk[i - first + 1] = values[i] end
      refs[#refs + 1] = task.remote(fn, chunk)
    end
    local out = {}
    for k, part in ipairs(cray.get(refs)) do
      for i = 1, size do out[(k - 1) * size + i] = part[i] end
    end
    return out
  end


  ---------------------------------------------------------------------------------------
  -- Supervisor: Erlang/OTP's supervisor on top of monitors. An actor of its own starts the
  -- children and watches them; when one dies it starts that one again (one_for_one) or
  -- kills the others and starts them all again, in order (one_for_all). More than
  -- max_restarts restarts within `period` seconds and it gives up: it kills the children
  -- and exits.

  local SupervisorActor = {}
  util.SupervisorActor = SupervisorActor

  local function start_child(c)
    local cls = c.class
    local opts = {}
    for k, v in pairs(c.options or {}) do opts[k] = v end
    if c.name then opts.name = c.name end
    return cls.options(opts).remote(unpack(c.args or {}))
  end

  function SupervisorActor:init(spec)
    self.spec, self.handles, self.stamps, self.restarts = spec, {}, {}, 0
    for i, c in ipairs(spec.children) do self.handles[i] = start_child(c) end
  end

  -- Restarts within the last period, this one included; false when past max_restarts.
  local function may_restart(self)
    local now = core.now()
    local kept = {}
    for _, t in ipairs(self.stamps) do
      if now - t < self.spec.period then kept[#kept + 1] = t end
    end
    kept[#kept + 1] = now
    self.stamps = kept
    return #kept <= self.spec.max_restarts
  end

  local function stop_children(self, except)
    local monitors = {}
    for i, h in ipairs(self.handles) do
      if i ~= except then
        monitors[#monitors + 1] = cray.monitor(h)
        cray.kill(h)
      end
    end
    cray.get(monitors)
  end

  -- Runs as long as the supervisor lives: started once by util.Supervisor.
  function SupervisorActor:watch()
    while not self.stopping do
      local monitors = {}
      for i, h in ipairs(self.handles) do monitors[i] = cray.monitor(h) end
      local ready = cray.wait(monitors)
      if self.stopping then return end
      local which
      for i, m in ipairs(monitors) do
        if m == ready[1] then which = i end
      end
      local info = cray.get(ready[1])
      if info.reason == "shutdown" then return end
      if not may_restart(self) then
        self.stopping = true
        stop_children(self, which)
        cray.exit_actor()
        return
      end
      if self.spec.strategy == "one_for_all" then
        stop_children(self, which)
        for i, c in ipairs(self.spec.children) do self.handles[i] = start_child(c) end
      else
        self.handles[which] = start_child(self.spec.children[which])
      end
      self.restarts = self.restarts + 1
    end
  end

  function SupervisorActor:child(name)
    for i, c in ipairs(self.spec.children) do
      if c.name == name or i == name then return self.handles[i] end
    end
  end

  function SupervisorActor:children() return self.handles end
  function SupervisorActor:restart_count() return self.restarts end

  function SupervisorActor:stop()
    self.stopping = true
    stop_children(self)
    cray.exit_actor()
  end

  local Supervisor = {}
  Supervisor.__index = Supervisor

  local strategies = {one_for_one = true, one_for_all = true}

  local supervisor_options = {
    strategy = function(v)
      if strategies[v] then return v end
      return nil, '"one_for_one" or "one_for_all"'
    end,
    max_restarts = options.whole(0, 2147483647),
    period = function(v)
      if type(v) == "number" and v > 0 then return v end
      return nil, "a number of seconds > 0"
    end,
    children = function(v)
      if type(v) ~= "table" or #v == 0 then return nil, "a non-empty array of child specs" end
      return v
    end,
  }

  local child_keys = {name = true, class = true, args = true, options = true}

  local function check_child(i, c)
    local where = ("util.Supervisor: children[%d]"):format(i)
    if type(c) ~= "table" then
      raise(4, "invalid_argument", "%s must be a table {class = A, args = {...}} (got %s)",
            where, type(c))
    end
    for k in pairs(c) do
      if not child_keys[k] then
        raise(4, "invalid_argument", "%s: unknown field '%s' (known: args, class, name, options)",
              where, tostring(k))
      end
    end
    if type(c.class) ~= "table" or not rawget(c.class, "remote") then
      raise(4, "invalid_argument", "%s: class must be an actor class (from cray.actor)", where)
    end
    if c.name ~= nil and type(c.name) ~= "string" then
      raise(4, "invalid_argument", "%s: name must be a string (got %s)", where, type(c.name))
    end
  end

  -- util.Supervisor{children = {{name =, class =, args =, options =}, ...},
  --                 strategy = "one_for_one", max_restarts = 3, period = 5}
  function util.Supervisor(opts)
    local o = options.check("util.Supervisor", opts, supervisor_options, 2)
    if not o.children then
      raise(2, "invalid_argument", "util.Supervisor: option 'children' is required")
    end
    for i, c in ipairs(o.children) do check_child(i, c) end
    local spec = {children = o.children, strategy = o.strategy or "one_for_one",
                  max_restarts = o.max_restarts or 3, period = o.period or 5}
    local actor = cray.actor("cray.util.SupervisorActor", {max_concurrency = 1000}).remote(spec)
    return setmetatable({actor = actor, watching = actor.watch.remote()}, Supervisor)
  end

  -- The current handle of the child named `name` (or at index `name`), nil if none.
  function Supervisor:child(name) return cray.get(self.actor.child.remote(name)) end
  -- The children's current handles, in order.
  function Supervisor:children() return cray.get(self.actor.children.remote()) end
  -- How many times it restarted children.
  function Supervisor:restart_count() return cray.get(self.actor.restart_count.remote()) end
  -- A ref that resolves when the supervisor ends (stopped, or gave up: reason "exited").
  function Supervisor:monitor() return cray.monitor(self.actor) end
  -- Kills the children and ends the supervisor.
  function Supervisor:stop() cray.get(self.actor.stop.remote()) end

  return util
end
