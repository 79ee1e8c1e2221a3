-- cray.io: cray.tcp (and the other non-blocking I/O) over the C half in bindings/lio.c.
-- Each call that must wait yields the calling task or actor call (the worker runs other
-- work meanwhile) and blocks the thread elsewhere, as cray.get does; when the coroutine
-- resumes with RETRY the call looks again. Listeners and connections are small tables
-- holding the id of a socket the runtime owns, with registered metatables, so they travel
-- to other tasks and actors inside values.

local errors = require "cray.errors"
local options = require "cray.options"

local raise = errors.raise

return function(cray, core, pending)
  local RETRY, isyieldable, now = core.retry(), coroutine.isyieldable, core.now
  local class = pending.class

  local function seconds(v)
    if type(v) == "number" and v >= 0 then return v end
    return nil, "a number of seconds >= 0"
  end
  local wait_options = {timeout = seconds}

  -- The deadline of opts.timeout (checked), or nil.
  local function deadline_of(fn, opts, level)
    local t = options.check(fn, opts, wait_options, level + 1).timeout
    return t and now() + t
  end

  -- Calls fn(a, b, deadline, yieldable, ...) again while it answers RETRY.
  local function again(fn, a, b, deadline, ...)
    local r = fn(a, b, deadline, isyieldable(), ...)
    while r == RETRY do r = fn(a, b, deadline, isyieldable(), ...) end
    return r
  end

  -- Waits for an op box (a name look-up, a file call, a subprocess) to finish.
  local op_wait = core.io_op_wait
  local function wait_op(box, deadline, fn)
    while op_wait(box, deadline, isyieldable(), fn) == RETRY do end
  end

  ---- tcp ----

  local Listener = class("cray.tcp.Listener")
  local Connection = class("cray.tcp.Connection")
  local listener_methods, connection_methods = {}, {}
  Listener.__index = listener_methods
  Connection.__index = connection_methods

  local function check_endpoint(fn, host, port, level)
    if type(host) ~= "string" or host == "" then
      raise(level + 1, "invalid_argument", "%s: host must be a non-empty string (got %s)", fn,
            type(host))
    end
    if type(port) ~= "number" or port ~= math.floor(port) or port < 0 or port > 65535 then
      raise(level + 1, "invalid_argument", "%s: port must be a whole number in 0..65535 (got %s)",
            fn, tostring(port))
    end
  end

  local function where(host, port)
    return host:find(":", 1, true) and ("[%s]:%d"):format(host, port) or ("%s:%d"):format(host, port)
  end

  -- The address of host (a numeric one at once, a name through the resolver).
  local function resolve(fn, host, port, deadline)
    local addr = core.tcp_numeric_addr(host, port)
    if addr then return addr end
    local box = core.tcp_resolve_op(host, port)
    wait_op(box, deadline, fn)
    return core.tcp_resolved(box, host, fn)
  end

  local tcp = {}
  cray.tcp = tcp

  local listen_options = {backlog = options.whole(1, 65535)}

  function tcp.listen(host, port, opts)
    check_endpoint("cray.tcp.listen", host, port, 2)
    local o = options.check("cray.tcp.listen", opts, listen_options, 2)
    local addr = resolve("cray.tcp.listen", host, port, nil)
    return setmetatable({id = core.tcp_listen(addr, o.backlog, where(host, port))}, Listener)
  end

  function tcp.connect(host, port, opts)
    check_endpoint("cray.tcp.connect", host, port, 2)
    local deadline = deadline_of("cray.tcp.connect", opts, 2)
    local addr = resolve("cray.tcp.connect", host, port, deadline)
    local to = where(host, port)
    local id = core.tcp_connect(addr, to)
    again(core.tcp_connect_wait, id, deadline, nil, to)
    return setmetatable({id = id}, Connection)
  end

  local function check_handle(fn, h, mt, what)
    if getmetatable(h) ~= mt then
      raise(3, "invalid_argument", "%s: expects a %s, called with a colon (got %s)", fn, what,
            type(h))
    end
  end

  function listener_methods.accept(srv, opts)
    check_handle("srv:accept", srv, Listener, "listener")
    local id = again(core.tcp_accept, srv.id, nil, deadline_of("srv:accept", opts, 2))
    return setmetatable({id = id}, Connection)
  end

  -- A method m of handles of metatable mt (what: "listener" or "connection") that returns
  -- fn(handle.id, flag).
  local function handle_method(m, mt, what, fn, flag)
    return function(h)
      check_handle(m, h, mt, what)
      return fn(h.id, flag)
    end
  end

  listener_methods.port = handle_method("srv:port", Listener, "listener", core.tcp_port, true)
  listener_methods.close = handle_method("srv:close", Listener, "listener", core.tcp_close, true)

  function Listener.__tostring(srv) return ("cray.tcp listener %d"):format(srv.id) end

  function connection_methods.read(conn, n, opts)
    check_handle("conn:read", conn, Connection, "connection")
    if n ~= nil and (type(n) ~= "number" or n ~= math.floor(n) or n < 1) then
      raise(2, "invalid_argument", "conn:read: n must be a whole number >= 1 (got %s)",
            tostring(n))
    end
    return again(core.tcp_read, conn.id, n, deadline_of("conn:read", opts, 2))
  end

  function connection_methods.write(conn, data, opts)
    check_handle("conn:write", conn, Connection, "connection")
    if type(data) ~= "string" then
      raise(2, "invalid_argument", "conn:write: data must be a string (got %s)", type(data))
    end
    again(core.tcp_write, conn.id, data, deadline_of("conn:write", opts, 2))
  end

  connection_methods.close =
      handle_method("conn:close", Connection, "connection", core.tcp_close, false)
  connection_methods.peer = handle_method("conn:peer", Connection, "connection", core.tcp_peer)
  connection_methods.port =
      handle_method("conn:port", Connection, "connection", core.tcp_port, false)

  function Connection.__tostring(conn) return ("cray.tcp connection %d"):format(conn.id) end

  ---- files ----

  local fs = {}
  cray.fs = fs

  local function check_path(fn, v, what)
    if type(v) ~= "string" or v == "" then
      raise(3, "invalid_argument", "%s: %s must be a non-empty string (got %s)", fn, what, type(v))
    end
  end

  -- fs.NAME(path [, arg]): one call on the thread pool, waited for.
  local function fs_call(kind, arg_kind)
    local fn = "cray.fs." .. kind
    return function(path, arg)
      check_path(fn, path, "path")
      if arg_kind == "path" then check_path(fn, arg, "new path") end
      if arg_kind == "data" and type(arg) ~= "string" then
        raise(2, "invalid_argument", "%s: data must be a string (got %s)", fn, type(arg))
      end
      local box = core.fs_op(kind, path, arg)
      wait_op(box, nil, fn)
      return core.fs_result(box, kind, fn)
    end
  end

  fs.read_file = fs_call("read_file")
  fs.write_file = fs_call("write_file", "data")
  fs.append_file = fs_call("append_file", "data")
  fs.stat = fs_call("stat")
  fs.list_dir = fs_call("list_dir")
  fs.remove = fs_call("remove")
  fs.rename = fs_call("rename", "path")

  ---- processes ----

  local exec_options = {
    input = options.of_type("string"),
    cwd = options.of_type("string"),
    env = options.of_type("table"),
    timeout = seconds,
  }

  function cray.exec(cmd)
    if type(cmd) ~= "table" or type(cmd[1]) ~= "string" or cmd[1] == "" then
      raise(2, "invalid_argument",
            "cray.exec: expects {program, args..., input = s, cwd = d, env = t, timeout = s}")
    end
    local argv, opts, n = {}, {}, 0
    for k, v in pairs(cmd) do
      if type(k) == "number" then
        n = n + 1
        if type(v) ~= "string" then
          raise(2, "invalid_argument", "cray.exec: argument %d must be a string (got %s)", k,
                type(v))
        end
        argv[k] = v
      else
        opts[k] = v
      end
    end
    if #argv ~= n then
      raise(2, "invalid_argument", "cray.exec: the arguments must have no holes")
    end
    local o = options.check("cray.exec", opts, exec_options, 2)
    local env
    if o.env then
      env = {}
      for k, v in pairs(o.env) do
        if type(k) ~= "string" or (type(v) ~= "string" and type(v) ~= "number") then
          raise(2, "invalid_argument", "cray.exec: env must map names to strings")
        end
        env[#env + 1] = k .. "=" .. v
      end
      table.sort(env)
    end
    local box = core.exec_op(argv, o.input, o.cwd, env, o.timeout)
    wait_op(box, nil, "cray.exec")
    return core.exec_result(box, argv[1])
  end
end
