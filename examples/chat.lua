-- A TCP chat server: an acceptor actor takes each new connection and hands it to an actor
-- of its own, which reads the client's lines and tells the room; the room actor sends
-- every line to every client. docs/io.md walks through it.
--
--   crayrun examples/chat.lua            a demo: starts the server, connects three
--                                        clients, each says hello, prints what each heard
--   crayrun examples/chat.lua serve 7000 serves on 127.0.0.1:7000 until killed
--                                        (try: nc 127.0.0.1 7000; the first line is a name)
local cray = require "cray"

-- Sends every line to every member; members are client actors, by name.
local Room = cray.actor{
  init = function(self) self.members = {} end,
  join = function(self, name, client)
    self.members[name] = client
    self:say("*", name .. " joined")
  end,
  leave = function(self, name)
    self.members[name] = nil
    self:say("*", name .. " left")
  end,
  say = function(self, from, text)
    for _, client in pairs(self.members) do client.send.remote(from .. ": " .. text .. "\n") end
  end,
  size = function(self)
    local n = 0
    for _ in pairs(self.members) do n = n + 1 end
    return n
  end,
}

-- One client's connection. `run` reads lines until the client leaves, while `send` calls
-- from the room write to it: two calls at once, so max_concurrency is 2.
local Client = cray.actor({
  init = function(self, room, conn)
    self.room, self.conn, self.buffer = room, conn, ""
  end,
  -- The next line from the client, or nil when it has gone.
  line = function(self)
    while not self.buffer:find("\n", 1, true) do
      local chunk = self.conn:read()
      if not chunk then return nil end
      self.buffer = self.buffer .. chunk
    end
    local line, rest = self.buffer:match("^([^\n]*)\n(.*)$")
    self.buffer = rest
    return (line:gsub("\r$", ""))
  end,
  run = function(self)
    local name = self:line()
    if not name then return self.conn:close() end
    self.room.join.remote(name, cray.self())
    for text in function() return self:line() end do self.room.say.remote(name, text) end
    self.room.leave.remote(name)
    self.conn:close()
    cray.exit_actor()
  end,
  send = function(self, text) self.conn:write(text) end,
}, {max_concurrency = 2})

-- Takes each new connection and hands it to a client actor of its own.
local Acceptor = cray.actor{
  run = function(self, srv, room)
    while true do
      local conn = srv:accept()
      Client.remote(room, conn).run.remote()
    end
  end,
}

local function serve(host, port)
  local srv = cray.tcp.listen(host, port)
  local room = Room.remote()
  local acceptor = Acceptor.remote()
  acceptor.run.remote(srv, room)
  return srv, room, acceptor
end

if arg[1] == "serve" then
  local srv = serve("127.0.0.1", tonumber(arg[2]) or 7000)
  io.stderr:write("chat: serving on 127.0.0.1:", srv:port(), "\n")
  while true do cray.sleep(3600) end
end

-- The demo: three clients join, wait until all are in, and each says hello.
local srv, room = serve("127.0.0.1", 0)
local names = {"alice", "bob", "carol"}
local conns = {}
for i, name in ipairs(names) do
  conns[i] = cray.tcp.connect("127.0.0.1", srv:port())
  conns[i]:write(name .. "\n")
end
while cray.get(room.size.remote()) < #names do cray.sleep(0.01) end
for i, name in ipairs(names) do conns[i]:write("hello from " .. name .. "\n") end

-- Each client reads until it heard the three hellos.
for i, name in ipairs(names) do
  local heard, buffer = {}, ""
  while #heard < #names do
    buffer = buffer .. conns[i]:read()
    for line in buffer:gmatch("[^\n]*\n") do
      if line:find("hello from", 1, true) then heard[#heard + 1] = line:sub(1, -2) end
    end
    buffer = buffer:match("[^\n]*$")
  end
  table.sort(heard)
  print(name .. " heard: " .. table.concat(heard, "; "))
end
for _, c in ipairs(conns) do c:close() end
