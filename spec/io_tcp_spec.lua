local support = require "spec.support"
local cray = support.fresh({workers = 2})

-- Echoes every chunk back until the client closes; returns the bytes it echoed.
local Echo = {
  __name = "Echo",
  serve = function(self, srv)
    local conn = srv:accept()
    local n = 0
    while true do
      local d = conn:read()
      if not d then break end
      n = n + #d
      conn:write(d)
    end
    conn:close()
    return n
  end,
}

local ffi = require "ffi"
pcall(ffi.cdef, "typedef struct cray_spec_dir cray_spec_dir;")
pcall(ffi.cdef, "cray_spec_dir *opendir(const char *name);")
pcall(ffi.cdef, "void *readdir(cray_spec_dir *d);")
pcall(ffi.cdef, "int closedir(cray_spec_dir *d);")

-- This process's open file descriptors, counted in the process itself: a child such as
-- `ls` may list them before the parent has closed its end of the pipe it reads through.
local function open_fds()
  local d = ffi.C.opendir("/proc/self/fd")
  assert(d ~= nil, "cannot open /proc/self/fd")
  local n = 0
  while ffi.C.readdir(d) ~= nil do n = n + 1 end
  ffi.C.closedir(d)
  return n - 3 -- less ".", ".." and the descriptor that reads the directory
end

describe("cray.tcp.listen", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  it("picks a free port for port 0 and tells it with srv:port()", function()
    local srv = cray.tcp.listen("127.0.0.1", 0)
    local port = srv:port()
    assert.is_true(port > 0 and port < 65536)
    assert.is_true(srv:close())
    assert.is_false(srv:close())
  end)

  it("refuses a port in use, naming the address and the system error", function()
    local srv = cray.tcp.listen("127.0.0.1", 0)
    local e = support.error_of(cray.tcp.listen, "127.0.0.1", srv:port())
    assert.are.equal("io_error", e.kind)
    assert.matches("cannot listen on 127.0.0.1:" .. srv:port() .. ": address already in use",
                   e.message, 1, true)
    srv:close()
  end)

  it("rejects a bad host, port or option", function()
    assert.matches("host must be a non%-empty string",
                   support.error_of(cray.tcp.listen, 42, 0).message)
    assert.matches("port must be a whole number in 0..65535",
                   support.error_of(cray.tcp.listen, "127.0.0.1", 70000).message)
    assert.matches("unknown option 'bogus'",
                   support.error_of(cray.tcp.listen, "127.0.0.1", 0, {bogus = 1}).message)
  end)

  it("says a closed listener is closed", function()
    local srv = cray.tcp.listen("127.0.0.1", 0)
    srv:close()
    local e = support.error_of(srv.accept, srv)
    assert.are.equal("closed", e.kind)
    assert.matches("tcp listener %d+ is closed", e.message)
  end)

  it("wants the method called with a colon", function()
    local srv = cray.tcp.listen("127.0.0.1", 0)
    assert.matches("srv:accept: expects a listener, called with a colon (got nil)",
                   support.error_of(srv.accept).message, 1, true)
    local c = cray.tcp.connect("127.0.0.1", srv:port())
    assert.matches("conn:read: expects a connection, called with a colon (got number)",
                   support.error_of(c.read, 5).message, 1, true)
    c:close()
    srv:close()
  end)
end)

describe("connections", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  it("echo through an actor: chunks, exact reads, nil at the end of the stream", function()
    local srv = cray.tcp.listen("127.0.0.1", 0)
    local e = cray.actor(Echo).remote()
    local served = e.serve.remote(srv)
    local c = cray.tcp.connect("127.0.0.1", srv:port())
    c:write("hello")
    assert.are.equal("hello", c:read(5))
    c:write("abcdefgh")
    assert.are.equal("abc", c:read(3))
    assert.are.equal("defgh", c:read(5))
    c:close()
    assert.are.equal(13, cray.get(served))
    srv:close()
  end)

  it("reads nil at the end of the stream, and what is left before it", function()
    local srv = cray.tcp.listen("127.0.0.1", 0)
    local sender = cray.remote(function(s)
      local conn = s:accept()
      conn:write("tail")
      conn:close()
    end).remote(srv)
    local c = cray.tcp.connect("127.0.0.1", srv:port())
    assert.are.equal("tail", c:read(10))
    assert.is_nil(c:read())
    cray.get(sender)
    c:close()
    srv:close()
  end)

  it("works over IPv6 (::1) and tells the peer's address", function()
    local srv = cray.tcp.listen("::1", 0)
    local got = cray.remote(function(s)
      local conn = s:accept()
      local peer = conn:peer()
      conn:write(conn:read(4))
      return peer
    end).remote(srv)
    local c = cray.tcp.connect("::1", srv:port())
    c:write("ping")
    assert.are.equal("ping", c:read(4))
    assert.matches("^%[::1%]:%d+$", cray.get(got))
    assert.are.equal("[::1]:" .. srv:port(), c:peer())
    c:close()
    srv:close()
  end)

  it("resolves names without blocking a worker (localhost)", function()
    local srv = cray.tcp.listen("127.0.0.1", 0)
    local port = srv:port()
    local r = cray.remote(function(p)
      local c = cray.tcp.connect("localhost", p)
      local peer = c:peer()
      c:close()
      return peer
    end).remote(port)
    local conn = srv:accept()
    assert.matches(":" .. port .. "$", cray.get(r))
    conn:close()
    srv:close()
  end)

  it("names the address and the system error when a connect fails", function()
    local srv = cray.tcp.listen("127.0.0.1", 0)
    local port = srv:port()
    srv:close()
    local e = support.error_of(cray.tcp.connect, "127.0.0.1", port)
    assert.are.equal("io_error", e.kind)
    assert.matches("cannot connect to 127.0.0.1:" .. port .. ": connection refused", e.message, 1, true)
  end)

  it("names the host it cannot resolve", function()
    local e = support.error_of(cray.tcp.connect, "no-such-host.invalid", 80)
    assert.are.equal("io_error", e.kind)
    assert.matches("cannot resolve 'no-such-host.invalid'", e.message, 1, true)
  end)

  it("write waits while the peer does not read, so memory does not grow", function()
    local srv = cray.tcp.listen("127.0.0.1", 0)
    local big = string.rep("x", 1024 * 1024)
    local writer = cray.remote(function(s, data)
      local conn = s:accept()
      for _ = 1, 16 do conn:write(data) end
      conn:close()
      return true
    end).remote(srv, big)
    local c = cray.tcp.connect("127.0.0.1", srv:port())
    -- The writer cannot be done: 16 MB does not fit in the kernel's buffers.
    local ready = cray.wait({writer}, {timeout = 0.3})
    assert.are.equal(0, #ready)
    local total = 0
    while true do
      local d = c:read()
      if not d then break end
      total = total + #d
    end
    assert.are.equal(16 * 1024 * 1024, total)
    assert.is_true(cray.get(writer))
    c:close()
    srv:close()
  end)

  it("rejects bad arguments to read and write", function()
    local srv = cray.tcp.listen("127.0.0.1", 0)
    local c = cray.tcp.connect("127.0.0.1", srv:port())
    assert.matches("n must be a whole number >= 1", support.error_of(c.read, c, 0).message)
    assert.matches("data must be a string", support.error_of(c.write, c, 12).message)
    assert.matches("option 'timeout' must be a number of seconds >= 0",
                   support.error_of(c.read, c, nil, {timeout = -1}).message)
    c:close()
    srv:close()
  end)
end)

describe("waits in I/O", function()
  before_each(function() cray = support.fresh({workers = 1}) end)

  it("with one worker, an actor waiting in accept or read does not stop other tasks", function()
    local srv = cray.tcp.listen("127.0.0.1", 0)
    local e = cray.actor(Echo).remote()
    local served = e.serve.remote(srv)
    local sq = cray.remote(function(x) return x * x end)
    local refs = {}
    for i = 1, 20 do refs[i] = sq.remote(i) end
    assert.are.equal(400, cray.get(refs)[20]) -- while the actor waits in accept
    local c = cray.tcp.connect("127.0.0.1", srv:port())
    c:write("x")
    assert.are.equal("x", c:read(1))
    for i = 1, 20 do refs[i] = sq.remote(i + 1) end
    assert.are.equal(441, cray.get(refs)[20]) -- while it waits in read
    c:close()
    assert.are.equal(1, cray.get(served))
    srv:close()
  end)

  it("time out with an error of kind timeout", function()
    local srv = cray.tcp.listen("127.0.0.1", 0)
    local r = cray.remote(function(s) return s:accept({timeout = 0.05}) end).remote(srv)
    local e = support.error_of(cray.get, r)
    assert.are.equal("timeout", e.cause and e.cause.kind or e.kind)
    local c = cray.tcp.connect("127.0.0.1", srv:port())
    local e2 = support.error_of(c.read, c, nil, {timeout = 0.05})
    assert.are.equal("timeout", e2.kind)
    assert.matches("conn:read: timed out", e2.message, 1, true)
    c:close()
    srv:close()
  end)

  it("end with cray.cancel, and the listener can be used again", function()
    local srv = cray.tcp.listen("127.0.0.1", 0)
    local r = cray.remote(function(s) return s:accept() end).remote(srv)
    cray.sleep(0.05)
    assert.is_true(cray.cancel(r))
    assert.are.equal("cancelled", support.error_of(cray.get, r).kind)
    local r2 = cray.remote(function(s) s:accept():close(); return "accepted" end).remote(srv)
    local c = cray.tcp.connect("127.0.0.1", srv:port())
    assert.are.equal("accepted", cray.get(r2))
    c:close()
    srv:close()
  end)
end)

describe("handing a handle over", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  it("a connection accepted by one actor is served by another", function()
    local Client = cray.actor{
      serve = function(self, conn)
        local line = conn:read(5)
        conn:write(line:upper())
        conn:close()
        return line
      end,
    }
    local Acceptor = cray.actor{
      run = function(self, srv, client)
        local conn = srv:accept()
        return client.serve.remote(conn)
      end,
    }
    local srv = cray.tcp.listen("127.0.0.1", 0)
    local served = Acceptor.remote().run.remote(srv, Client.remote())
    local c = cray.tcp.connect("127.0.0.1", srv:port())
    c:write("hello")
    assert.are.equal("HELLO", c:read(5))
    assert.are.equal("hello", cray.get(cray.get(served)))
    c:close()
    srv:close()
  end)

  it("using it from two places at once is an error that says so", function()
    local srv = cray.tcp.listen("127.0.0.1", 0)
    local waiter = cray.remote(function(s) return pcall(s.accept, s) end).remote(srv)
    cray.sleep(0.1) -- it waits in accept now
    local e = support.error_of(srv.accept, srv)
    assert.are.equal("busy", e.kind)
    assert.matches("tcp listener %d+ is in use by another task or actor at the same time", e.message)
    local c = cray.tcp.connect("127.0.0.1", srv:port())
    assert.is_true(cray.get(waiter))
    c:close()
    srv:close()
  end)
end)

describe("life and death of handles", function()
  before_each(function() cray = support.fresh({workers = 2}) end)

  it("a task's connections close when it ends", function()
    local srv = cray.tcp.listen("127.0.0.1", 0)
    local r = cray.remote(function(s) local conn = s:accept(); conn:write("hi"); return conn end).remote(srv)
    local c = cray.tcp.connect("127.0.0.1", srv:port())
    local conn = cray.get(r)
    assert.are.equal("hi", c:read(2))
    assert.is_nil(c:read()) -- closed at the task's end
    assert.are.equal("closed", support.error_of(conn.read, conn).kind)
    c:close()
    srv:close()
  end)

  it("an actor's connections close when it is killed", function()
    local Holder = cray.actor{
      take = function(self, srv) self.conn = srv:accept(); return true end,
    }
    local srv = cray.tcp.listen("127.0.0.1", 0)
    local h = Holder.remote()
    local took = h.take.remote(srv)
    local c = cray.tcp.connect("127.0.0.1", srv:port())
    assert.is_true(cray.get(took))
    cray.kill(h)
    assert.is_nil(c:read())
    c:close()
    srv:close()
  end)

  it("every handle closes at shutdown", function()
    cray.get(cray.remote(function() end).remote()) -- the runtime's own threads start
    local before = open_fds()
    local Holder = cray.actor{
      take = function(self, srv) self.conn = srv:accept(); return true end,
    }
    local srv = cray.tcp.listen("127.0.0.1", 0)
    local took = Holder.remote().take.remote(srv)
    local c = cray.tcp.connect("127.0.0.1", srv:port())
    assert.is_true(cray.get(took))
    assert.is_true(open_fds() >= before + 3) -- the listener and both ends
    cray.shutdown()
    assert.is_true(open_fds() <= before) -- the runtime's own descriptors went too
    assert.are.equal("closed", support.error_of(c.read, c).kind)
  end)

  it("10,000 connections opened and dropped leave the descriptor count where it was", function()
    local srv = cray.tcp.listen("127.0.0.1", 0)
    local port = srv:port()
    local before = open_fds()
    -- Each task drops what it opened: its connections close when it ends.
    local accept = cray.remote(function(s, n)
      for _ = 1, n do s:accept() end
      return n
    end)
    local dial = cray.remote(function(p, n)
      for _ = 1, n do cray.tcp.connect("127.0.0.1", p) end
      return n
    end)
    local total = 0
    for _ = 1, 100 do
      local got = cray.get({accept.remote(srv, 100), dial.remote(port, 100)})
      total = total + got[1]
    end
    assert.are.equal(10000, total)
    support.eventually(cray, function() return open_fds() <= before end, "descriptors back to " .. before)
    srv:close()
  end)
end)
