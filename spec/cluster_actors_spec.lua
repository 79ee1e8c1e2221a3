-- Actors across ranks (docs/cluster.md): `node` as an actor option, handles passed
-- anywhere, calls from every rank, kill, monitors, restarts, collection, names, streaming
-- calls and tasks. Each job runs under `mpirun -n 3 crayrun -w 1` and prints
-- "key<TAB>value" lines. Skipped, saying so, where mpirun is absent.
local support = require "spec.support"

local mpirun, job, lines = support.mpirun, support.job, support.lines
local describe_mpi = support.have_mpirun("cluster_actors_spec") and describe or pending

describe_mpi("actors on other ranks", function()
  local status, out, err, got

  setup(function()
    status, out, err = job([[
      local Counter = cray.actor{
        init = function(self, n) self.n = n end,
        incr = function(self, k) self.n = self.n + (k or 1); return self.n end,
        size = function(self, s) return #s end,
        rank = function() return rank() end,
        fail = function() error("boom") end,
      }
      -- node places it; without node it lives where it is made
      local c = Counter.options{node = 1}.remote(10)
      print("placed", cray.get(c.rank.remote()))
      print("unplaced", cray.get(Counter.remote(0).rank.remote()))
      local made_on_2 = cray.remote(function() return {Counter.remote(5)} end).options{node = 2}
      local h2 = cray.get(made_on_2.remote())[1]
      print("made_there", cray.get(h2.rank.remote()) .. "," .. cray.get(h2.incr.remote()))

      -- one caller's calls run in the order sent, a long argument among short ones too
      local refs = {}
      for i = 1, 30 do
        refs[i] = i % 10 == 0 and c.size.remote(string.rep("x", 200000)) or c.incr.remote(1)
      end
      local seen = {}
      for i, v in ipairs(cray.get(refs)) do seen[i] = v end
      print("order", table.concat(seen, ","))

      -- one-way calls (num_returns = 0, cray.after) with ref arguments
      local Sum = cray.actor{init = function(self) self.n = 0 end,
                             add = function(self, x) self.n = self.n + x end,
                             get = function(self) return self.n end}
      local sum = Sum.options{node = 2}.remote()
      local add = sum.add.options{num_returns = 0}
      for i = 1, 10 do add.remote(cray.put(i)) end
      cray.after(0, sum.add, 100)
      local t0 = os.time()
      while cray.get(sum.get.remote()) ~= 155 and os.time() - t0 < 60 do cray.sleep(0.02) end
      print("one_way", cray.get(sum.get.remote()))

      -- handles as arguments, nested in values, from a third rank
      local via = cray.remote(function(h, t)
        return cray.get(h.incr.remote(100)) .. "," .. cray.get(t.h.incr.remote(1000)) .. "," .. rank()
      end).options{node = 2}
      print("via_third", cray.get(via.remote(c, {h = c})))

      -- a handle as a result: cray.self() from rank 2, equal to the creator's handle
      local S = cray.actor{me = function() return {cray.self()} end, who = function() return rank() end}
      local s = S.options{node = 2}.remote()
      local me = cray.get(s.me.remote())[1]
      print("self", cray.get(me.who.remote()) .. "," .. tostring(me == s))

      -- errors: kind, message, remote traceback
      local ok, e = pcall(cray.get, c.fail.remote())
      print("error", tostring(ok) .. "," .. e.kind .. "," .. e.message)
      print("traceback", tostring(e.traceback:find("stack traceback") ~= nil))

      -- max_pending_calls counted where the actor lives
      local Slow = cray.actor{wait = function() cray.sleep(0.2); return 1 end}
      local sl = Slow.options{node = 1, max_pending_calls = 1}.remote()
      local r1, r2 = sl.wait.remote(), sl.wait.remote()
      local ok2, e2 = pcall(cray.get, r2)
      print("pending", cray.get(r1) .. "," .. tostring(ok2) .. "," .. e2.kind)

      -- max_concurrency: a second call runs while the first waits
      local Two = cray.actor{hold = function(self, t) cray.get(t[1]); return "held" end,
                             open = function() return "open" end}
      local two = Two.options{node = 1, max_concurrency = 2}.remote()
      local gate = cray.remote(function() cray.sleep(0.3); return true end).options{node = 2}.remote()
      local held = two.hold.remote({gate})
      print("concurrency", cray.get(two.open.remote()) .. "," .. cray.get(held))

      -- restarts and their reports
      local R = cray.actor{init = function(self) self.k = 0 end,
                           bump = function(self) self.k = self.k + 1; return self.k end}
      local r = R.options{node = 2, max_restarts = 1}.remote()
      cray.get(r.bump.remote())
      local mr = cray.monitor(r, {restarts = true})
      cray.kill(r, {no_restart = false})
      local report = cray.get(mr)
      print("restart", report.reason .. "," .. report.restarts .. "," .. cray.get(r.bump.remote()))

      -- kill and monitor
      local m = cray.monitor(c)
      local was = cray.kill(c)
      print("killed", cray.get(m).reason .. "," .. tostring(was) .. "," .. tostring(cray.kill(c)))
      local ok3, e3 = pcall(cray.get, c.incr.remote())
      print("dead", tostring(ok3) .. "," .. e3.kind)

      -- cray.link of actors on two other ranks
      local L = cray.actor{ping = function() return "pong" end}
      local la, lb = L.options{node = 1}.remote(), L.options{node = 2}.remote()
      local link = cray.link(la, lb)
      cray.kill(la)
      local did = cray.get(link)
      local ok4, e4 = pcall(cray.get, lb.ping.remote())
      print("link", did .. "," .. tostring(ok4) .. "," .. tostring(type(e4) == "table" and e4.kind or e4))
    ]])
    got = lines(out)
  end)

  it("runs every rank's job to the end", function()
    assert.are.equal(0, status, err)
  end)

  it("makes an actor with options{node = k} on rank k, and one without node where it is made", function()
    assert.are.equal("1", got.placed)
    assert.are.equal("0", got.unplaced)
    assert.are.equal("2,6", got.made_there)
  end)

  it("runs one caller's calls in the order sent, results back", function()
    local want = {}
    local n = 10
    for i = 1, 30 do
      if i % 10 == 0 then want[i] = 200000 else n = n + 1; want[i] = n end
    end
    assert.are.equal(table.concat(want, ","), got.order)
  end)

  it("sends one-way calls, their ref arguments read there", function()
    assert.are.equal("155", got.one_way)
  end)

  it("calls through handles passed as arguments, nested in values and as results", function()
    assert.are.equal("137,1137,2", got.via_third)
    assert.are.equal("2,true", got.self)
  end)

  it("raises a method's error with its kind, message and remote traceback", function()
    assert.matches("^false,task_error,.*boom$", got.error)
    assert.are.equal("true", got.traceback)
  end)

  it("holds max_pending_calls and max_concurrency where the actor lives", function()
    assert.are.equal("1,false,pending_calls_exceeded", got.pending)
    assert.are.equal("open,held", got.concurrency)
  end)

  it("restarts, reports the restart, kills, monitors and links across ranks", function()
    assert.are.equal("restarted,1,1", got.restart)
    assert.are.equal("killed,true,false", got.killed)
    assert.are.equal("false,actor_died", got.dead)
    assert.are.equal("killed,false,actor_died", got.link)
  end)
end)

describe_mpi("streaming across ranks", function()
  local status, out, err, got

  setup(function()
    status, out, err = job([[
      local function values(gen)
        local got = {}
        for ref in gen do
          local ok, v = pcall(cray.get, ref)
          got[#got + 1] = ok and tostring(v) or ("error:" .. v.kind .. ":" .. tostring(v.message):match("[^:]*$"))
        end
        return table.concat(got, ",")
      end
      local Board = cray.actor{init = function(self) self.t = {} end,
                               set = function(self, k, v) self.t[k] = v end,
                               get = function(self, k) return self.t[k] end}
      local board = Board.options{node = 2}.remote()
      local S = cray.actor{
        init = function(self) self.base = 100 end,
        count = function(self, n) for i = 1, n do coroutine.yield(self.base + i) end end,
        where = function(self, n) for i = 1, n do coroutine.yield(rank()) end end,
        fail = function(self) coroutine.yield(1); coroutine.yield(2); error("bad") end,
        big = function(self) coroutine.yield(#string.rep("x", 3000000)); coroutine.yield(string.rep("y", 3000000)) end,
        track = function(self, b, n) for i = 1, n do b.set.remote("produced", i); coroutine.yield(i) end end,
      }
      local s = S.options{node = 1}.remote()
      local stream = {num_returns = "streaming"}
      print("actor", values(s.count.options(stream).remote(5)))
      print("where", values(s.where.options(stream).remote(2)))
      print("error", values(s.fail.options(stream).remote()))
      local gb = s.big.options(stream).remote()
      local r1, r2 = gb(), gb()
      print("big", cray.get(r1) .. "," .. #cray.get(r2) .. "," .. tostring(gb()))
      -- from a third rank
      local third = cray.remote(function(h) local t = 0; for ref in h.count.options{num_returns = "streaming"}.remote(4) do t = t + cray.get(ref) end; return t end)
      print("third", cray.get(third.options{node = 2}.remote(s)))
      -- backpressure
      local g = s.track.options{num_returns = "streaming", generator_backpressure = 3}.remote(board, 20)
      local t0 = os.time()
      while (cray.get(board.get.remote("produced")) or 0) < 4 and os.time() - t0 < 30 do cray.sleep(0.01) end
      cray.sleep(0.2)
      print("paused", cray.get(board.get.remote("produced")))
      local n = 0
      for ref in g do n = n + 1; assert(cray.get(ref) == n) end
      t0 = os.time() -- the producer's last calls to the board may still be on their way
      while cray.get(board.get.remote("produced")) ~= 20 and os.time() - t0 < 30 do cray.sleep(0.01) end
      print("resumed", n .. "," .. cray.get(board.get.remote("produced")))
      -- a collected generator lets its paused producer go on
      board.set.remote("produced", 0)
      do
        local g2 = s.track.options{num_returns = "streaming", generator_backpressure = 1}.remote(board, 10)
        cray.get(g2())
      end
      collectgarbage(); collectgarbage()
      t0 = os.time()
      while cray.get(board.get.remote("produced")) ~= 10 and os.time() - t0 < 30 do cray.sleep(0.01) end
      print("abandoned", cray.get(board.get.remote("produced")))
      -- tasks
      local f = cray.remote(function(n) for i = 1, n do coroutine.yield(i * 10) end end)
      print("task", values(f.options{num_returns = "streaming", node = 1}.remote(4)))
      local gens = {}
      for i = 1, 6 do gens[i] = f.options{num_returns = "streaming"}.remote(i) end
      local sums = {}
      for i = 1, 6 do local t = 0; for ref in gens[i] do t = t + cray.get(ref) end; sums[i] = t end
      print("unplaced", table.concat(sums, ","))
      local forever = cray.remote(function(b)
        local i = 0
        while true do i = i + 1; b.set.remote("last", i); coroutine.yield(i); cray.sleep(0.001) end
      end)
      local gc = forever.options{num_returns = "streaming", generator_backpressure = -1, node = 1}.remote(board)
      cray.get(gc())
      print("cancel", tostring(cray.cancel(gc)))
      local ok, e = pcall(cray.get, gc.ref)
      print("cancelled", e.kind)
      -- it stops there: "last" settles (the calls it made before may still be arriving)
      local stable, prev = false, -1
      t0 = os.time()
      while not stable and os.time() - t0 < 30 do
        local now = cray.get(board.get.remote("last"))
        stable = now == prev
        prev = now
        cray.sleep(0.2)
      end
      print("stopped", tostring(stable))
      -- a producer paused for its consumer stops when cancelled too
      local gp = s.track.options{num_returns = "streaming", generator_backpressure = 1}.remote(board, 50)
      cray.get(gp())
      cray.cancel(gp)
      local okp, ep = pcall(cray.get, gp.ref)
      print("cancel_paused", tostring(okp) .. "," .. ep.kind .. "," .. cray.get(s.count.options(stream).remote(1)()))
      -- bad input
      local okb, eb = pcall(function() return s.count.options{num_returns = "streaming", generator_backpressure = 0} end)
      print("bad_bound", eb.message)
      local okg, eg = pcall(function() return cray.remote(function() end).options{node = 1}.remote(f.options(stream).remote(1)) end)
      print("bad_generator", eg.kind .. "," .. eg.message)
    ]])
    got = lines(out)
  end)

  it("runs the job to the end", function()
    assert.are.equal(0, status, err)
  end)

  it("streams a remote actor's values in order as produced, on its rank, to any rank", function()
    assert.are.equal("101,102,103,104,105", got.actor)
    assert.are.equal("1,1", got.where)
    assert.are.equal("3000000,3000000,nil", got.big)
    assert.are.equal("410", got.third)
  end)

  it("gives the error after the last value", function()
    assert.are.equal("1,2,error:task_error: bad", got.error)
  end)

  it("pauses the producer at generator_backpressure and lets it go on as values are taken", function()
    assert.are.equal("4", got.paused)
    assert.are.equal("20,20", got.resumed)
    assert.are.equal("10", got.abandoned)
  end)

  it("streams a task placed on another rank, or moved there", function()
    assert.are.equal("10,20,30,40", got.task)
    assert.are.equal("10,30,60,100,150,210", got.unplaced)
  end)

  it("cancels a streaming task on another rank, running or paused", function()
    assert.are.equal("true", got.cancel)
    assert.are.equal("cancelled", got.cancelled)
    assert.are.equal("true", got.stopped)
    assert.are.equal("false,cancelled,101", got.cancel_paused)
  end)

  it("refuses a bad bound and a generator sent to another rank, naming them", function()
    assert.matches("option 'generator_backpressure' must be a whole number >= 1", got.bad_bound)
    assert.matches("^serialization,.*cannot serialize", got.bad_generator)
  end)
end)

describe_mpi("monitors of actors on other ranks", function()
  it("are no work in flight: a driver that waits on what nothing makes is told", function()
    local status, out, err = job([[
      local A = cray.actor{f = function() return 1 end}
      local a = A.options{node = 1}.remote()
      local m = cray.monitor(a)
      cray.get(a.f.remote())
      local ok, e = pcall(cray.get, m)
      print("waited", tostring(ok) .. "," .. e.kind)
      print("alive", cray.get(a.f.remote()))
    ]])
    assert.are.equal(0, status, err)
    local got = lines(out)
    assert.are.equal("false,deadlock", got.waited)
    assert.are.equal("1", got.alive)
  end)
end)

describe_mpi("collecting an actor across ranks", function()
  it("frees an actor once every rank dropped its handles", function()
    local status, out, err = job([[
      local Counter = cray.actor{init = function(self) self.n = 0 end}
      local alive = cray.remote(function()
        collectgarbage()
        collectgarbage()
        return cray.stats().actors.alive
      end)
      local function alive_on(k) return cray.get(alive.options{node = k}.remote()) end
      local base = alive_on(1)
      local keep = cray.remote(function(t) KEEP = t.h; return true end).options{node = 2}
      local drop = cray.remote(function() KEEP = nil; collectgarbage(); collectgarbage(); return true end)
                     .options{node = 2}
      local m
      local function make()
        local h = Counter.options{node = 1}.remote()
        m = cray.monitor(h)
        cray.get(keep.remote({h = h}))
        print("alive_made", alive_on(1) - base)
      end
      make()
      collectgarbage()
      collectgarbage()
      print("held_by_2", #cray.wait({m}, {timeout = 0.3}))
      cray.get(drop.remote())
      print("collected", cray.get(m, {timeout = 60}).reason)
      local t0 = os.time()
      while alive_on(1) ~= base and os.time() - t0 < 60 do cray.sleep(0.05) end
      print("alive_after", alive_on(1) - base)
    ]])
    assert.are.equal(0, status, err)
    local got = lines(out)
    assert.are.equal("1", got.alive_made)
    assert.are.equal("0", got.held_by_2)
    assert.are.equal("collected", got.collected)
    assert.are.equal("0", got.alive_after)
  end)
end)

describe_mpi("named actors across ranks", function()
  local status, out, err, got

  setup(function()
    status, out, err = job([[
      local Svc = cray.actor{
        init = function(self, tag) self.tag = tag end,
        who = function(self) return self.tag .. "@" .. rank() end,
      }
      -- made on rank 1 by a task, found from rank 0 and from rank 2
      local make = cray.remote(function(name, tag)
        local h = Svc.options{name = name}.remote(tag)
        return cray.get(h.who.remote())
      end)
      print("made", cray.get(make.options{node = 1}.remote("svc", "one")))
      print("from_0", cray.get(cray.get_actor("svc").who.remote()))
      local find = cray.remote(function(name) return cray.get(cray.get_actor(name).who.remote()) end)
      print("from_2", cray.get(find.options{node = 2}.remote("svc")))
      -- made on rank 0, found from rank 2
      Svc.options{name = "home"}.remote("zero")
      print("home_from_2", cray.get(find.options{node = 2}.remote("home")))
      -- every rank lists the job's names; with nodes, where each actor lives
      Svc.options{node = 2}.remote("unnamed")
      local function listed()
        local parts = {}
        for _, a in ipairs(cray.list_actors{nodes = true}) do parts[#parts + 1] = a.name .. "@" .. a.node end
        return table.concat(parts, ",")
      end
      print("listed", listed())
      local names_from = cray.remote(function() return table.concat(cray.list_actors(), ",") end)
      print("listed_1", cray.get(names_from.options{node = 1}.remote()))
      local okl, el = pcall(cray.list_actors, {nodes = 1})
      print("bad_list", el.message)
      -- the name is the job's: taken from any rank; get_if_exists gives the one there is
      local again = cray.remote(function(name)
        local ok, e = pcall(function() return Svc.options{name = name}.remote("two") end)
        local same = Svc.options{name = name, get_if_exists = true}.remote("three")
        return tostring(ok) .. "," .. e.kind .. "," .. cray.get(same.who.remote())
      end)
      print("taken", cray.get(again.options{node = 2}.remote("svc")))
      local ok, e = pcall(function() return Svc.options{name = "svc"}.remote("zero") end)
      print("taken_0", tostring(ok) .. "," .. e.message)
      -- unknown names
      local missing = cray.remote(function()
        local ok, e = pcall(cray.get_actor, "nobody")
        return tostring(ok) .. "," .. e.kind .. "," .. tostring(cray.get_actor("nobody", {missing_ok = true}))
      end)
      print("missing", cray.get(missing.options{node = 1}.remote()))
      -- a killed named actor frees its name, job-wide
      cray.kill(cray.get_actor("svc"))
      local t0 = os.time()
      while cray.get_actor("svc", {missing_ok = true}) and os.time() - t0 < 60 do cray.sleep(0.02) end
      print("freed", tostring(cray.get_actor("svc", {missing_ok = true})))
      print("listed_freed", listed())
      local remade = cray.get(make.options{node = 2}.remote("svc", "new"))
      print("remade", remade .. "," .. cray.get(cray.get_actor("svc").who.remote()))
    ]])
    got = lines(out)
  end)

  it("runs the job to the end", function()
    assert.are.equal(0, status, err)
  end)

  it("finds an actor by name from every rank, wherever it was made", function()
    assert.are.equal("one@1", got.made)
    assert.are.equal("one@1", got.from_0)
    assert.are.equal("one@1", got.from_2)
    assert.are.equal("zero@0", got.home_from_2)
  end)

  it("keeps a name once in the job: taken from any rank, get_if_exists gives that actor", function()
    assert.are.equal("false,invalid_argument,one@1", got.taken)
    assert.matches("^false,an actor named 'svc' exists already", got.taken_0)
  end)

  it("lists the job's named actors from every rank, with the node each lives on", function()
    assert.are.equal("home@0,svc@1", got.listed)
    assert.are.equal("home,svc", got.listed_1)
    assert.are.equal("home@0", got.listed_freed)
    assert.matches("option 'nodes' must be a boolean", got.bad_list)
  end)

  it("raises for an unknown name, or returns nil with missing_ok, on every rank", function()
    assert.are.equal("false,invalid_argument,nil", got.missing)
  end)

  it("frees a killed actor's name on every rank, so it can be taken again", function()
    assert.are.equal("nil", got.freed)
    assert.are.equal("new@2,new@2", got.remade)
  end)
end)

describe_mpi("a script that uses actors", function()
  it("gives the same results alone and under mpirun -n 3", function()
    local path = support.script([[
      io.stdout:setvbuf("line")
      local util = require "cray.util"
      local Acc = cray.actor{
        init = function(self) self.total = 0 end,
        add = function(self, x) self.total = self.total + x; return self.total end,
      }
      local acc = Acc.remote()
      local square = cray.remote(function(a, x) a.add.remote(x * x); return x * x end)
      local refs = {}
      for i = 1, 40 do refs[i] = square.remote(acc, i) end
      local sum = 0
      for _, v in ipairs(cray.get(refs)) do sum = sum + v end
      print("sum", sum, cray.get(acc.add.remote(0)))
      local pool = util.ActorPool{Acc.remote(), Acc.remote(), Acc.remote()}
      local got = {}
      for v in pool:map(function(a, x) return a.add.remote(x) end, {1, 2, 3, 4, 5, 6}) do
        got[#got + 1] = v
      end
      print("pool", table.concat(got, ","))
      local inner = cray.remote(function(t) return cray.get(t.a.add.remote(1)) end)
      print("nested", cray.get(inner.remote({a = acc})))
    ]])
    local s1, alone, e1 = support.crayrun("-w 1 " .. path)
    local s3, many, e3 = mpirun(path)
    os.remove(path)
    assert.are.equal(0, s1, e1)
    assert.are.equal(0, s3, e3)
    assert.matches("^sum\t22140\t22140\n", alone)
    assert.are.equal(alone, many)
  end)
end)

describe_mpi("bad actor placement in a job", function()
  it("refuses a node the job does not have, and a name with another node", function()
    local status, out, err = job([[
      local A = cray.actor{f = function() return 1 end}
      local ok, e = pcall(function() return A.options{node = 5}.remote() end)
      print("far", e.message)
      local ok2, e2 = pcall(function() return A.options{node = 1, name = "x"}.remote() end)
      print("named", e2.message)
    ]])
    assert.are.equal(0, status, err)
    local got = lines(out)
    assert.matches("actor .* asks for node 5, but the job has nodes 0 to 2", got.far)
    assert.matches("actor 'x' asks for a name and node 1", got.named)
  end)
end)

describe("actors placed in one process", function()
  it("refuses options{node = k} for a node other than 0, naming the node", function()
    local status, _, err = support.crayrun(
      [[-e "cray.actor{f = function() end}.options{node = 2}.remote()"]])
    assert.are.equal(1, status)
    assert.matches("asks for node 2, but this runtime is one process, node 0 only", err)
  end)

  it("makes an actor with options{node = 0} where it is", function()
    local status, out, err = support.crayrun(
      [[-e "print(cray.get(cray.actor{f = function() return 7 end}.options{node = 0}.remote().f.remote()))"]])
    assert.are.equal(0, status, err)
    assert.are.equal("7\n", out)
  end)

  it("refuses options{node} that is not a whole number of a node", function()
    local status, _, err = support.crayrun([[-e "cray.actor{f = function() end}.options{node = -1}"]])
    assert.are.equal(1, status)
    assert.matches("node", err)
    assert.matches("whole number", err)
  end)
end)
