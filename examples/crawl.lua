-- A crawler: fetches the pages of a small web site over HTTP, following links, with at
-- most MAX pages in flight at once. The site is served here too, by an actor on 127.0.0.1
-- that hands each request to a task.
--
--   crayrun examples/crawl.lua [pages [max_in_flight]]     (defaults: 60 pages, 4)
local cray = require "cray"

local PAGES = tonumber(arg[1]) or 60
local MAX = tonumber(arg[2]) or 4

-- Page i links to pages 2i and 2i+1 and back to page 1: a tree the crawler walks down.
local function page(i)
  local links = {'<a href="/1">home</a>'}
  for _, j in ipairs{2 * i, 2 * i + 1} do
    if j <= PAGES then links[#links + 1] = ('<a href="/%d">page %d</a>'):format(j, j) end
  end
  return ("<html><h1>page %d</h1>%s</html>"):format(i, table.concat(links, " "))
end

-- Answers one HTTP/1.0 request on conn, then closes it.
local answer = cray.remote(function(conn, pages)
  local request = ""
  while not request:find("\r\n\r\n", 1, true) do
    local chunk = conn:read()
    if not chunk then return conn:close() end
    request = request .. chunk
  end
  local i = tonumber(request:match("^GET /(%d+) "))
  local body, status = "not found", "404 Not Found"
  if i and i >= 1 and i <= pages then
    -- a page takes a little while to make, as a real server's would
    cray.sleep(0.01)
    body, status = page(i), "200 OK"
  end
  conn:write(("HTTP/1.0 %s\r\nContent-Length: %d\r\n\r\n%s"):format(status, #body, body))
  conn:close()
end)

local Server = cray.actor{
  run = function(self, srv, pages)
    while true do answer.remote(srv:accept(), pages) end
  end,
}

-- Fetches http://127.0.0.1:port/path: the status code and the body.
local fetch = cray.remote(function(port, path)
  local conn = cray.tcp.connect("127.0.0.1", port)
  conn:write(("GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"):format(path))
  local response = {}
  for chunk in function() return conn:read() end do response[#response + 1] = chunk end
  conn:close()
  local text = table.concat(response)
  return tonumber(text:match("^HTTP/1%.%d (%d+)")), text:match("\r\n\r\n(.*)$")
end)

local srv = cray.tcp.listen("127.0.0.1", 0)
Server.remote().run.remote(srv, PAGES)

-- The crawl: a queue of paths not fetched yet, and at most MAX fetches in flight.
local seen, queue, flying, most, fetched = {["/1"] = true}, {"/1"}, {}, 0, 0
local path_of = {}
while #queue > 0 or next(path_of) do
  while #queue > 0 and #flying < MAX do
    local path = table.remove(queue, 1)
    local ref = fetch.remote(srv:port(), path)
    flying[#flying + 1], path_of[ref] = ref, path
  end
  most = math.max(most, #flying)
  local ready, pending = cray.wait(flying, {num_returns = 1})
  flying = pending
  for _, ref in ipairs(ready) do
    local status, body = cray.get(ref)
    assert(status == 200, "fetching " .. path_of[ref] .. " gave " .. tostring(status))
    fetched = fetched + 1
    path_of[ref] = nil
    for link in body:gmatch('href="(/%d+)"') do
      if not seen[link] then
        seen[link] = true
        queue[#queue + 1] = link
      end
    end
  end
end
print(("crawled %d pages, at most %d in flight"):format(fetched, most))
