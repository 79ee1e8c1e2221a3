-- The multi-process runtime (docs/cluster.md): crayrun under mpirun, three ranks with one
-- worker each. Every case starts a whole job, so each job checks several promises at once
-- and its output is read line by line (print(key, value)). Skipped, saying so, where mpirun is
-- absent.
local support = require "spec.support"

local job, lines = support.job, support.lines
local describe_mpi = support.have_mpirun("cluster_spec") and describe or pending

describe_mpi("a job on three ranks", function()
  local status, out, err, got

  setup(function()
    local big = support.san == "" and 100 * 1024 * 1024 or 16 * 1024 * 1024
    status, out, err = job(([[
      local BIG = %d
      local where = cray.remote(function(x) return os.getenv("OMPI_COMM_WORLD_RANK"), x end)
      for k = 0, 2 do
        local rank, x = cray.get(where.options{node = k}.remote(k * 10))
        print("rank_of_" .. k, rank .. "," .. x)
      end
      local r1, x1 = cray.get(where.remote(1))
      print("unplaced", r1 .. "," .. x1)

      -- values of every size both ways: put here, read there; made there, read here
      local size_of = cray.remote(function(s) return #s, s:sub(1, 1) .. s:sub(-1) end)
      local make = cray.remote(function(n) return string.rep("y", n - 1) .. "z" end)
      for _, n in ipairs{1, 1000, 70000, 5 * 1024 * 1024 + 3, BIG} do
        local s = string.rep("x", n - 1) .. "e"
        local len, ends = cray.get(size_of.options{node = 1}.remote(cray.put(s)))
        local back = cray.get(make.options{node = 2}.remote(n))
        print("size_" .. n, len .. "," .. ends .. "," .. #back .. "," .. back:sub(-1))
      end

      -- refs nested in values, both ways, and a ref made on one rank read on another
      local x = cray.put({a = 1, b = "two"})
      local nested = cray.remote(function(t) return cray.get(t.inner[1]).b end)
      print("nested_in", cray.get(nested.options{node = 2}.remote({inner = {x}})))
      local mk = cray.remote(function() return {cray.put("made on 1")} end)
      local refs = cray.get(mk.options{node = 1}.remote())
      print("nested_out", cray.get(refs[1]))
      local pass = cray.remote(function(t) return cray.get(t[1]) .. " via 2" end)
      print("third_rank", cray.get(pass.options{node = 2}.remote(refs)))

      -- a task on one rank submits to another
      local outer = cray.remote(function()
        local inner = cray.remote(function(y) return y + 1, os.getenv("OMPI_COMM_WORLD_RANK") end)
        local v, r = cray.get(inner.options{node = 2}.remote(41))
        return v .. "@" .. r
      end)
      print("chained", cray.get(outer.options{node = 1}.remote()))

      -- errors keep their kind, message, remote traceback and cause
      local bad = cray.remote(function() error("boom far away") end)
      local ok, e = pcall(cray.get, bad.options{node = 1, max_retries = 0}.remote())
      print("error_kind", tostring(ok) .. "," .. e.kind)
      print("error_message", e.message)
      print("error_traceback", (e.traceback:gsub("\n", " ")))
      local after = cray.remote(function(v) return v end)
      local failed_dep = bad.options{node = 1, max_retries = 0}.remote()
      local ok2, e2 = pcall(cray.get, after.options{node = 2}.remote(failed_dep))
      print("cause", tostring(ok2) .. "," .. e2.kind .. "," .. e2.cause.message)

      -- bad input
      local ok3, e3 = pcall(function() return where.options{node = 3}.remote() end)
      print("bad_node", tostring(ok3) .. "," .. e3.kind .. "," .. e3.message)

      -- cancel across ranks: a task running on rank 1 stops at its next wait; a task for
      -- rank 1 still waiting here for its argument fails at once
      local long = cray.remote(function()
        for _ = 1, 400 do cray.sleep(0.05) end
        return "finished"
      end)
      local running = long.options{node = 1, max_retries = 0}.remote()
      cray.sleep(0.2)
      local told = cray.cancel(running)
      local okc, ec = pcall(cray.get, running)
      print("cancel_running", tostring(told) .. "," .. tostring(okc) .. "," .. ec.kind)
      local gate = long.options{node = 2, max_retries = 0}.remote()
      local after = cray.remote(function(x) return x end).options{node = 1}.remote(gate)
      local told2 = cray.cancel(after)
      local okd, ed = pcall(cray.get, after)
      print("cancel_waiting", tostring(told2) .. "," .. tostring(okd) .. "," .. ed.kind)
      cray.cancel(gate)

      -- a driver waiting on another rank is not a deadlock
      local slow = cray.remote(function() cray.sleep(0.3) return "late" end)
      print("no_deadlock", cray.get(slow.options{node = 2}.remote()))
    ]]):format(big))
    got = lines(out)
  end)

  it("runs the script once, on rank 0, and every rank exits with status 0", function()
    assert.are.equal(0, status, err)
    local _, count = out:gsub("rank_of_0\t", "")
    assert.are.equal(1, count)
  end)

  it("runs a task with options{node = k} on rank k and brings its results back", function()
    assert.are.equal("0,0", got.rank_of_0)
    assert.are.equal("1,10", got.rank_of_1)
    assert.are.equal("2,20", got.rank_of_2)
  end)

  it("runs a task without a node on some rank, its submitter's or one that stole it", function()
    assert.matches("^[012],1$", got.unplaced)
  end)

  it("moves values of 1 byte to 100 MB between ranks, both ways", function()
    local big = support.san == "" and 100 * 1024 * 1024 or 16 * 1024 * 1024
    for _, n in ipairs{1, 1000, 70000, 5 * 1024 * 1024 + 3, big} do
      local ends = n == 1 and "ee" or "xe"
      assert.are.equal(("%d,%s,%d,z"):format(n, ends, n), got["size_" .. n], "size " .. n)
    end
  end)

  it("passes refs nested in values to another rank and back, and on to a third", function()
    assert.are.equal("two", got.nested_in)
    assert.are.equal("made on 1", got.nested_out)
    assert.are.equal("made on 1 via 2", got.third_rank)
  end)

  it("lets a task on one rank place a task on another", function()
    assert.are.equal("42@2", got.chained)
  end)

  it("raises a remote error with its kind, message and remote traceback", function()
    assert.are.equal("false,task_error", got.error_kind)
    assert.matches("boom far away", got.error_message)
    assert.matches("in function 'error'", got.error_traceback)
  end)

  it("fails a task whose argument failed on another rank, with that error as the cause", function()
    assert.matches("^false,task_error,.*boom far away", got.cause)
  end)

  it("refuses a node the job does not have, naming it and the nodes there are", function()
    assert.matches("^false,invalid_argument,.*asks for node 3, but the job has nodes 0 to 2",
                   got.bad_node)
  end)

  it("cancels a task running on another rank, and one waiting to be sent there", function()
    assert.are.equal("true,false,cancelled", got.cancel_running)
    assert.are.equal("true,false,cancelled", got.cancel_waiting)
  end)

  it("does not take a wait for another rank's result for a deadlock", function()
    assert.are.equal("late", got.no_deadlock)
  end)
end)

describe_mpi("nodes, stats and resources across ranks", function()
  local status, out, err, got

  setup(function()
    -- rank 2 alone has 2 units of gpu; ranks 0 and 1 have one of fast; rank 1 two workers
    status, out, err = job([[
      local nodes = cray.nodes()
      local desc = {}
      for i, n in ipairs(nodes) do
        desc[i] = ("%d:%d:%s:%s:%s:%s"):format(n.node, n.workers, tostring(n.alive),
          tostring(n.resources.gpu), tostring(n.resources.fast), tostring(#n.host > 0))
      end
      print("nodes", table.concat(desc, " "))
      print("context_here", cray.context().node)
      local node_of = cray.remote(function() return cray.context().node end)
      print("context_there", cray.get(node_of.options{node = 1}.remote()) .. ","
                             .. cray.get(node_of.options{node = 2}.remote()))
      local total = cray.cluster_resources()
      print("cluster_resources", total.CPU .. "," .. total.gpu .. "," .. total.fast)
      local free = cray.available_resources()
      print("available", free.CPU .. "," .. free.gpu .. "," .. free.fast)
      -- a task holding the gpu on rank 2 shows in the available units
      local hold = cray.remote(function() cray.sleep(0.5) return cray.context().node end)
      local held = hold.options{resources = {gpu = 2}}.remote()
      local during
      for _ = 1, 100 do
        during = cray.available_resources().gpu
        if during == 0 then break end
        cray.sleep(0.01)
      end
      print("gpu_held", during .. "," .. cray.get(held))

      -- a task that needs gpu runs on rank 2 only, placed or not
      local refs = {}
      for i = 1, 12 do refs[i] = node_of.options{resources = {gpu = 1}}.remote() end
      local where = {}
      for i = 1, 12 do where[#where + 1] = cray.get(refs[i]) end
      print("gpu_where", table.concat(where, ","))
      print("gpu_placed", cray.get(node_of.options{node = 2, resources = {gpu = 2}}.remote()))
      -- tasks needing fast, busy a while: run on ranks 0 and 1 (stolen), never on 2
      local busy = cray.remote(function()
        local t = os.clock()
        while os.clock() - t < 0.02 do end
        return cray.context().node
      end)
      local fast = {}
      for i = 1, 40 do fast[i] = busy.options{resources = {fast = 1}}.remote() end
      local ranks = {}
      for i = 1, 40 do ranks[cray.get(fast[i])] = true end
      print("fast_ranks", tostring(ranks[0]) .. "," .. tostring(ranks[1]) .. "," .. tostring(ranks[2]))

      -- bad input: a node without the resource, too much of it, one no node has
      local function refused(opts)
        local ok, e = pcall(function() return node_of.options(opts).remote() end)
        return tostring(ok) .. "," .. e.kind .. "," .. e.message
      end
      print("lacks", refused{node = 1, resources = {gpu = 1}})
      print("too_much", refused{node = 2, resources = {gpu = 3}})
      print("nowhere", refused{resources = {tpu = 1}})
      print("nowhere_enough", refused{resources = {gpu = 5}})
      print("nowhere_together", refused{resources = {gpu = 1, fast = 1}})

      -- stats on rank 0 sum the ranks and list each
      local s = cray.stats()
      local finished, objects = 0, 0
      for _, n in ipairs(s.nodes) do
        finished = finished + n.tasks.finished
        objects = objects + n.store.objects
      end
      print("stats", #s.nodes .. "," .. s.workers .. "," .. tostring(s.tasks.finished == finished)
                     .. "," .. tostring(s.store.objects == objects) .. ","
                     .. tostring(s.nodes[3].tasks.finished >= 14))
      local stats_there = cray.remote(function() return #cray.stats().nodes end)
      print("stats_there", cray.get(stats_there.options{node = 1}.remote()))
    ]], {"--resource fast=1", "-w 2 --resource fast=1", "--resource gpu=2"})
    got = lines(out)
  end)

  it("lists every rank in cray.nodes(), with its workers, resources and host", function()
    assert.are.equal(0, status, err)
    assert.are.equal("0:1:true:nil:1:true 1:2:true:nil:1:true 2:1:true:2:nil:true", got.nodes)
  end)

  it("gives the current rank as cray.context().node", function()
    assert.are.equal("0", got.context_here)
    assert.are.equal("1,2", got.context_there)
  end)

  it("sums the resources of every rank", function()
    assert.are.equal("4,2,2", got.cluster_resources)
    assert.are.equal("4,2,2", got.available)
    assert.are.equal("0,2", got.gpu_held)
  end)

  it("runs a task that needs a resource only where it exists", function()
    assert.are.equal(("2,"):rep(11) .. "2", got.gpu_where)
    assert.are.equal("2", got.gpu_placed)
    assert.are.equal("true,true,nil", got.fast_ranks)
  end)

  it("refuses a node that lacks the resource, naming the node, the resource and who has it", function()
    assert.matches("^false,invalid_argument,task '[^']+' needs resource 'gpu', which node 1 "
                   .. "does not have %(nodes with it: 2%)$", got.lacks)
    assert.matches("needs 3 of resource 'gpu', but node 2 has only 2 %(no node has that much%)",
                   got.too_much)
  end)

  it("refuses a resource no rank has, naming it", function()
    assert.matches("^false,invalid_argument,.*needs 1 of resource 'tpu', which no node of the job "
                   .. "has %(give a rank %-%-resource tpu=N%)", got.nowhere)
    assert.matches("^false,invalid_argument,.*needs 5 of resource 'gpu', but no node of the job "
                   .. "has that much", got.nowhere_enough)
    assert.matches("^false,invalid_argument,.*needs resources that no one node of the job has "
                   .. "together", got.nowhere_together)
  end)

  it("sums every rank in cray.stats() and lists each under nodes", function()
    assert.are.equal("3,4,true,true,true", got.stats)
    assert.are.equal("3", got.stats_there)
  end)
end)

describe_mpi("work stealing across ranks", function()
  local status, out, err, got

  setup(function()
    status, out, err = job([[
      -- busy for a while: a task that yields would let rank 0 start them all at once
      local where = cray.remote(function(i)
        local t = os.clock()
        while os.clock() - t < 0.02 do end
        return i * i, os.getenv("OMPI_COMM_WORLD_RANK")
      end)
      local refs = {}
      for i = 1, 60 do refs[i] = where.remote(i) end
      local sum, ranks = 0, {}
      for i = 1, 60 do
        local v, r = cray.get(refs[i])
        sum = sum + v
        ranks[r] = true
      end
      print("sum", sum)
      print("elsewhere", tostring(ranks["1"] or ranks["2"] or false))

      local Counter = cray.actor{init = function(self) self.n = 0 end,
                                 add = function(self, k) self.n = self.n + k return self.n end}
      local c = Counter.remote()
      local use = cray.remote(function(h, k)
        cray.get(h.add.remote(k))
        return os.getenv("OMPI_COMM_WORLD_RANK")
      end)
      local calls = {}
      for k = 1, 20 do calls[k] = use.remote(c, k) end
      local here = true
      for k = 1, 20 do here = here and cray.get(calls[k]) == "0" end
      print("actor_tasks_here", tostring(here))
      print("actor_total", cray.get(c.add.remote(0)))
    ]])
    got = lines(out)
  end)

  it("runs tasks submitted on rank 0 on idle ranks too, with the same results", function()
    assert.are.equal(0, status, err)
    assert.are.equal(tostring(60 * 61 * 121 / 6), got.sum)
    assert.are.equal("true", got.elsewhere)
  end)

  it("keeps a task that holds an actor handle on the actor's rank", function()
    assert.are.equal("true", got.actor_tasks_here)
    assert.are.equal("210", got.actor_total)
  end)
end)

describe_mpi("freeing across ranks", function()
  local status, out, err, got

  setup(function()
    status, out, err = job([[
      -- a rank's object count, after a full collection of its (one) worker state
      local count_on = cray.remote(function()
        collectgarbage()
        collectgarbage()
        return cray.stats().store.objects
      end)
      local function objects(node) return cray.get(count_on.options{node = node}.remote()) end
      local function here()
        collectgarbage()
        collectgarbage()
        return cray.stats().store.objects
      end
      -- polls until the count is back where it was (or below: the base may have counted a
      -- finished task's returns not yet let go), or gives up; frees cross ranks as messages
      local function settle(count, want)
        local n
        for _ = 1, 200 do
          n = count()
          if n <= want then break end
          cray.sleep(0.02)
        end
        return n
      end
      local mk = cray.remote(function(i) return {cray.put(("v"):rep(i))} end).options{node = 1}
      local peek = cray.remote(function(t) return cray.get(t[1]) end).options{node = 1}
      -- each runs once first: rank 1 keeps the functions of the tasks it ran lately, as
      -- after any first use
      local function warm()
        cray.get(peek.remote({cray.put("warm")}))
        cray.get(mk.remote(1))
      end
      warm()
      -- the lowest of a few looks, so what the warm-up left in flight is not counted
      local function lowest(count)
        local n = count()
        for _ = 1, 5 do
          cray.sleep(0.05)
          n = math.min(n, count())
        end
        return n
      end
      local base1 = lowest(function() here() return objects(1) end)
      local base0 = lowest(here)
      -- in a function, so no stack slot of the driver keeps its refs once it returns
      local function exchange()
        local boxes, sum = {}, 0
        for i = 1, 20 do boxes[i] = cray.get(mk.remote(i)) end
        for i = 1, 20 do sum = sum + #cray.get(boxes[i][1]) end
        print("values", sum)
        local x = cray.put("mine")
        local seen = 0
        for _ = 1, 10 do seen = seen + (cray.get(peek.remote({x})) == "mine" and 1 or 0) end
        print("seen", seen)
        print("held_while_used", tostring(objects(1) > base1))
      end
      exchange()
      -- rank 0 collects too: its refs returning their weight is what frees rank 1's objects
      print("back_on_1", settle(function() here() return objects(1) end, base1) - base1)
      print("back_on_0", settle(here, base0) - base0)
    ]])
    got = lines(out)
  end)

  it("frees an object once no rank holds a ref to it: counts return where they were", function()
    assert.are.equal(0, status, err)
    assert.are.equal(tostring(20 * 21 / 2), got.values)
    assert.are.equal("10", got.seen)
    assert.are.equal("true", got.held_while_used)
    assert.is_true(tonumber(got.back_on_1) <= 0, got.back_on_1)
    assert.is_true(tonumber(got.back_on_0) <= 0, got.back_on_0)
  end)
end)

describe_mpi("pulling values from other ranks", function()
  local status, out, err, got

  setup(function()
    status, out, err = job([[
      local MB = 1024 * 1024
      local big = cray.put(string.rep("q", MB))
      -- on rank 2: its store's bytes before and after reading a ref that came nested
      local peek = cray.remote(function(t)
        local function bytes() return cray.stats().nodes[3].store.bytes end
        cray.sleep(0.3) -- a pull made on arrival would have brought the bytes by now
        local before = bytes()
        local v = cray.get(t[1])
        return tostring(before < MB) .. "," .. tostring(bytes() >= MB) .. "," .. #v
      end)
      print("lazy", cray.get(peek.options{node = 2}.remote({big})))
      -- a ref polled with a wait of no time is pulled too
      local poll = cray.remote(function(t)
        for _ = 1, 2000 do
          if #cray.wait({t[1]}, {timeout = 0}) == 1 then return #cray.get(t[1]) end
          cray.sleep(0.005)
        end
        return "never ready"
      end)
      print("polled", cray.get(poll.options{node = 1}.remote({cray.put("abc")})))
      -- and one passed on unread to a third rank is pulled only there
      local pass = cray.remote(function(t) return #cray.get(t[1]) end)
      local via = cray.remote(function(t)
        local n = cray.get(pass.options{node = 2}.remote(t))
        return n .. "," .. tostring(cray.stats().nodes[2].store.bytes < 100000)
      end)
      print("passed_on", cray.get(via.options{node = 1}.remote({cray.put(("p"):rep(100000))})))
    ]])
    got = lines(out)
  end)

  it("pulls a nested ref's value when something reads it, not when the ref arrives", function()
    assert.are.equal(0, status, err)
    assert.are.equal("true,true," .. 1024 * 1024, got.lazy)
  end)

  it("pulls a ref polled with cray.wait{timeout = 0}", function()
    assert.are.equal("3", got.polled)
  end)

  it("does not pull a ref a rank only passes on", function()
    assert.are.equal("100000,true", got.passed_on)
  end)
end)

describe_mpi("the memory budget across ranks", function()
  it("makes values sent to a rank wait for room in its budget, and spills them there", function()
    -- rank 1 (budget 4 MiB) is sent 24 values of 1 MiB and holds them all
    local status, out, err = job([[
      local MB = 1024 * 1024
      local refs = {}
      for i = 1, 24 do refs[i] = cray.put(string.rep(string.char(64 + i), MB)) end
      local hold = cray.remote(function(list)
        local ok = 0
        for i, r in ipairs(list) do
          local v = cray.get(r)
          if #v == MB and v:byte(1) == 64 + i and v:byte(-1) == 64 + i then ok = ok + 1 end
        end
        local me = cray.stats().nodes[2].store
        return ok, me.budget, me.peak_bytes, me.spilled_objects
      end)
      local ok, budget, peak, spilled = cray.get(hold.options{node = 1}.remote(refs))
      print("held", ok .. "," .. budget)
      print("peak", peak)
      print("spilled", spilled)
    ]], {"", "-m 4M", ""})
    assert.are.equal(0, status, err)
    local got = lines(out)
    assert.are.equal("24,4194304", got.held)
    -- within 1.5 times the budget, plus one value let in at the limit and the 16 KiB per
    -- shard that peak_bytes rounds to
    assert.is_true(tonumber(got.peak) <= 6 * 1024 * 1024 + 2 * 1024 * 1024, got.peak)
    assert.is_true(tonumber(got.spilled) >= 16, got.spilled)
  end)
end)

describe_mpi("crayrun --stats under MPI", function()
  it("prints the job's totals on rank 0 at exit, one row per rank", function()
    local status, _, err = job([[
      local sq = cray.remote(function(x) return x * x end)
      for k = 0, 2 do cray.get(sq.options{node = k}.remote(k)) end
    ]], {"--stats", "-w 2", ""})
    assert.are.equal(0, status, err)
    local _, reports = err:gsub("cray stats:", "")
    assert.are.equal(1, reports)
    assert.matches("cray stats: [%d.]+s, 4 workers", err)
    assert.matches("nodes: 3 %(the lines above sum them%)", err)
    assert.matches("\n%s+1%s+%S+%s+2%s+1%s+0", err) -- rank 1: 2 workers, 1 finished, 0 failed
  end)
end)

describe_mpi("the end of a job", function()
  it("gives every rank rank 0's status when the script fails", function()
    local status, out, err = job([[
      print("started")
      error("the script fails")
    ]])
    assert.are.equal(1, status)
    assert.are.equal("started\n", out)
    assert.matches("the script fails", err)
  end)

  it("ends within seconds, naming the rank and the work in flight, when a rank dies", function()
    local status, _, err = job([[
      local die = cray.remote(function() -- os.exit is refused in a task: end the process at once
        local ffi = require "ffi"
        pcall(ffi.cdef, "void _exit(int status);")
        ffi.C._exit(3)
      end, {name = "die"})
      -- rank 1 monitors an actor here: a monitor is no work in flight, so not named
      local A = cray.actor{f = function() return 1 end}
      local a = A.remote()
      local watch = cray.remote(function(h) MONITOR = cray.monitor(h); return true end)
      cray.get(watch.options{node = 1}.remote(a))
      cray.get(die.options{node = 1}.remote())
      print("not reached")
    ]])
    assert.are_not.equal(0, status)
    assert.are_not.equal(124, status) -- timeout's status: the job hung
    -- cray's message, from rank 0 (the others wait a moment before they end the job), with
    -- the task in flight to it
    assert.matches("crayrun: rank 0 of 3: rank 1 %(pid %d+ on [^)]+%) has died; in flight with "
                   .. "rank 1: 1 task sent to it %('die'%); ending the job", err)
  end)
end)

describe_mpi("the job's timeline", function()
  local json = require "dkjson"

  -- The trace at path: each process's name by pid, and the pids on which each named task
  -- ran (its "X" slices).
  local function read_trace(path)
    local text = support.read(path)
    local doc = assert(json.decode(text), path .. " is not JSON")
    local procs, ran = {}, {}
    for _, e in ipairs(doc.traceEvents) do
      if e.ph == "M" and e.name == "process_name" then procs[e.pid] = e.args.name end
      if e.ph == "X" and e.cat == "task" then
        ran[e.name] = ran[e.name] or {}
        ran[e.name][e.pid] = true
      end
    end
    return procs, ran, doc
  end

  local body = [[
    local where = cray.remote(function() cray.sleep(0.01); return os.getenv("OMPI_COMM_WORLD_RANK") end,
                              {name = "where"})
    local refs = {}
    for k = 0, 2 do refs[#refs + 1] = where.options{node = k}.remote() end
    print("ran", table.concat(cray.get(refs), ","))
  ]]

  it("is written by rank 0 with one process per rank, each with the tasks that ran there", function()
    local trace = os.tmpname()
    local status, out, err = job(([[
      cray.timeline()
      %s
      local events = cray.timeline(%q)
      print("events", tostring(events > 0))
      local ok, e = pcall(cray.timeline, 5)
      print("bad", e.message)
    ]]):format(body, trace))
    assert.are.equal(0, status, err)
    local got = lines(out)
    assert.are.equal("0,1,2", got.ran)
    assert.are.equal("true", got.events)
    assert.matches("cray.timeline: the path must be a string", got.bad)
    local procs, ran = read_trace(trace)
    os.remove(trace)
    assert.are.same({"cray rank 0", "cray rank 1", "cray rank 2"}, procs)
    assert.are.same({true, true, true}, ran.where)
  end)

  it("is one file from crayrun --timeline on every rank", function()
    local trace = os.tmpname()
    local path = support.script('io.stdout:setvbuf("line")\n' .. body)
    local arg = "--timeline " .. trace
    local status, out, err = support.mpirun(path, {arg, arg, arg})
    os.remove(path)
    assert.are.equal(0, status, err)
    assert.are.equal("0,1,2", lines(out).ran)
    local procs, ran = read_trace(trace)
    os.remove(trace)
    assert.are.same({"cray rank 0", "cray rank 1", "cray rank 2"}, procs)
    assert.are.same({true, true, true}, ran.where)
    for k = 1, 2 do assert.is_nil(io.open(trace .. ".rank" .. k)) end
  end)
end)

describe("crayrun without an MPI launcher", function()
  it("does not load MPI", function()
    local status, out, err = support.crayrun([[-e "for l in io.lines('/proc/self/maps') do if l:find('libmpi') then print(l) end end"]])
    assert.are.equal(0, status, err)
    assert.are.equal("", out)
  end)

  it("refuses options{node = k} for a node other than 0, naming the node", function()
    local status, _, err = support.crayrun([[-e "cray.remote(function() end).options{node = 2}.remote()"]])
    assert.are.equal(1, status)
    assert.matches("asks for node 2, but this runtime is one process, node 0 only", err)
  end)

  it("runs options{node = 0} where it is", function()
    local status, out, err = support.crayrun([[-e "print(cray.get(cray.remote(function() return 7 end).options{node = 0}.remote()))"]])
    assert.are.equal(0, status, err)
    assert.are.equal("7\n", out)
  end)

  it("refuses a --cluster mode it does not know", function()
    local status, _, err = support.crayrun("--cluster tcp -e 'print(1)'")
    assert.are.equal(2, status)
    assert.matches("%-%-cluster wants mpi or none, not 'tcp'", err)
  end)

  it("refuses options{node} that is not a whole number of a node", function()
    local status, _, err = support.crayrun([[-e "cray.remote(function() end).options{node = -1}"]])
    assert.are.equal(1, status)
    assert.matches("option 'node' must be a whole number from 0 to 65535", err)
  end)
end)
