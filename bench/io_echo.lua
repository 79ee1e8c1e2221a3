-- TCP echo through cray.tcp: a server actor echoes every chunk back, a client actor
-- writes a message and reads it back whole, over one loopback connection. bench/io_echo.c
-- runs the same echo in plain C on libuv, in the same `make bench` (docs/performance.md).
--   io_tcp_echo_roundtrips_per_second   64-byte messages
--   io_tcp_echo_gb_per_second           1 MiB messages, counted once per round trip
--   build/crayrun bench/io_echo.lua     (from the repository's root; bench/run runs it)
local bench = require "bench.lib"
local cray = require "cray"

local Server = cray.actor{
  serve = function(self, srv)
    local conn = srv:accept()
    for chunk in function() return conn:read() end do conn:write(chunk) end
    conn:close()
  end,
}

local Client = cray.actor{
  connect = function(self, port) self.conn = cray.tcp.connect("127.0.0.1", port) end,
  echo = function(self, n, size)
    local msg, conn = string.rep("x", size), self.conn
    for _ = 1, n do
      conn:write(msg)
      assert(#conn:read(size) == size)
    end
  end,
  close = function(self) self.conn:close() end,
}

local function measure(name, unit, n, size, figure)
  local srv = cray.tcp.listen("127.0.0.1", 0)
  local served = Server.remote().serve.remote(srv)
  local client = Client.remote()
  cray.get(client.connect.remote(srv:port()))
  bench.measure(name, unit, function()
    local t0 = bench.now()
    cray.get(client.echo.remote(n, size))
    return figure(bench.now() - t0)
  end)
  cray.get(client.close.remote())
  cray.get(served)
  srv:close()
end

local small = bench.quick and 200 or 20000
measure("io_tcp_echo_roundtrips_per_second", "per_second", small, 64,
        function(s) return small / s end)
local large = bench.quick and 4 or 400
measure("io_tcp_echo_gb_per_second", "gb_per_second", large, 1024 * 1024,
        function(s) return large * 1024 * 1024 / s / 1e9 end)
