-- The benchmarks run and print what `make bench` promises; how fast is not checked here
-- (docs/performance.md has the figures). Every run is CRAY_BENCH_QUICK=1: tiny sizes.
local support = require "spec.support"

local units = {per_second = true, gb_per_second = true, bytes = true, seconds = true, us = true}

-- The metrics in `out`, name -> value; fails on any line that is not "<metric> <value>
-- <unit>" with a known unit and a finite value >= 0, and on a metric printed twice.
local function metrics(out)
  local seen = {}
  for line in out:gmatch("([^\n]*)\n") do
    local name, value, unit = line:match("^([%w_]+) ([%d.]+) ([%w_]+)$")
    assert(name and units[unit] and tonumber(value), "not a metric line: " .. line)
    assert(not seen[name], "printed twice: " .. name)
    seen[name] = tonumber(value)
  end
  assert.are.equal("", out:gsub("[^\n]*\n", ""), "stdout ends in a partial line")
  return seen
end

local function quick(cmd)
  return support.run(("CRAY_BENCH_QUICK=1 B=%s %s"):format(support.build, cmd))
end

-- Runs a script that uses bench.lib; returns status, stdout, stderr.
local function with_lib(body, env)
  local path = os.tmpname() .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write('local bench = require "bench.lib"\n', body)
  f:close()
  local status, out, err = support.run(("%s %s/crayrun %s"):format(env or "CRAY_BENCH_QUICK=1",
                                                                   support.build, path))
  os.remove(path)
  return status, out, err
end

local function listed_files(dir)
  local status, out = support.run("ls " .. dir)
  assert.are.equal(0, status)
  local files = {}
  for name in out:gmatch("[^\n]+") do files[#files + 1] = name end
  return files
end

describe("bench/run", function()
  it("prints only metric lines: the ceilings and every metric of the scripts, once each", function()
    local status, out, err = quick("sh bench/run")
    assert.are.equal(0, status, err)
    local got = metrics(out)
    for _, name in ipairs{"ceiling_memcpy_gb_per_second", "ceiling_handoff_per_second",
                          "single_client_put_calls", "single_client_get_calls",
                          "single_client_put_calls_4m_live", "single_client_get_calls_4m_live",
                          "free_objects_per_second", "object_bytes",
                          "tasks_1k_after_free_seconds", "single_client_put_gigabytes", "single_client_wait_1k_refs",
                          "single_client_get_object_containing_10k_refs",
                          "single_client_tasks_sync", "single_client_tasks_async",
                          "single_client_tasks_async_traced",
                          "multi_client_tasks_async",
                          "1_1_actor_calls_sync", "1_1_actor_calls_async",
                          "1_1_actor_calls_concurrent", "1_n_actor_calls_async",
                          "n_n_actor_calls_async", "n_n_actor_calls_with_arg_async",
                          "actor_creation_per_second", "actor_bytes",
                          "savina_pingpong", "savina_counting", "savina_fj_throughput",
                          "savina_fj_creation", "savina_thread_ring", "savina_big",
                          "savina_chameneos", "io_tcp_echo_roundtrips_per_second",
                          "io_tcp_echo_gb_per_second", "io_tcp_echo_c_roundtrips_per_second",
                          "io_tcp_echo_c_gb_per_second"} do
      assert.is_truthy(got[name], name)
      assert.is_true(got[name] > 0, name)
    end
    -- The MPI part runs where mpirun and the transport exist, in plain builds.
    if got.ceiling_mpi_roundtrip_seconds then
      for _, name in ipairs{"ceiling_mpi_send_gb_per_second", "mpi_object_transfer_gb_per_second",
                            "mpi_task_roundtrip_seconds", "mpi_tasks_async",
                            "mpi_actor_call_roundtrip_us", "mpi_local_actor_call_us"} do
        assert.is_true((got[name] or 0) > 0, name)
      end
    end
    assert.matches("== store.lua", err)
  end)

  it("lists every script under bench/ and runs each", function()
    local status, out = support.run("sh bench/run --list")
    assert.are.equal(0, status)
    local listed = {}
    for b in out:gmatch("[^\n]+") do listed[b] = true end
    assert.is_true(listed.ceiling)
    local scripts = listed_files("bench")
    local savina = support.run("test -d bench/savina") == 0 and listed_files("bench/savina") or {}
    for _, name in ipairs(savina) do scripts[#scripts + 1] = "savina/" .. name end
    for _, name in ipairs(scripts) do
      if name:match("%.lua$") and name ~= "lib.lua" then
        assert.is_true(listed[name], name .. " is not listed in bench/run")
      end
    end
    for b in pairs(listed) do
      if b:match("%.lua$") then
        local s, script_out, err = quick(("%s/crayrun bench/%s"):format(support.build, b))
        assert.are.equal(0, s, err)
        assert.is_truthy(next(metrics(script_out)), b .. " printed no metric")
      end
    end
  end)

  it("runs only the metrics CRAY_BENCH_FILTER names", function()
    local status, out, err = quick("CRAY_BENCH_FILTER=get_calls sh bench/run")
    assert.are.equal(0, status, err)
    assert.are.same({"single_client_get_calls", "single_client_get_calls_4m_live"}, (function()
      local names = {}
      for name in pairs(metrics(out)) do names[#names + 1] = name end
      table.sort(names)
      return names
    end)())
  end)

  it("fails when a benchmark fails, and still runs the others", function()
    local status, out, err = support.run(("CRAY_BENCH_QUICK=1 B=%s/nowhere sh bench/run")
                                         :format(support.build))
    assert.are_not.equal(0, status)
    assert.are.equal("", out)
    assert.matches("ceiling failed", err)
    assert.matches("store.lua failed", err)
  end)
end)

describe("bench.lib", function()
  it("make runs its maker in the driver, or in a task with CRAY_BENCH_MAKER=task", function()
    local body = [[
      local cray = require "cray"
      print(tostring(bench.make(function(k) return {k, cray.context().worker} end, 7)[2]))
    ]]
    local status, out, err = with_lib(body)
    assert.are.equal(0, status, err)
    assert.are.equal("nil\n", out)
    status, out, err = with_lib(body, "CRAY_BENCH_QUICK=1 CRAY_BENCH_MAKER=driver")
    assert.are.equal(0, status, err)
    assert.are.equal("nil\n", out)
    status, out, err = with_lib(body, "CRAY_BENCH_QUICK=1 CRAY_BENCH_MAKER=task")
    assert.are.equal(0, status, err)
    assert.matches("^%d+\n$", out)
    for _, script in ipairs({"savina/pingpong.lua", "savina/thread_ring.lua"}) do
      status, out, err = support.run(("CRAY_BENCH_QUICK=1 CRAY_BENCH_MAKER=task %s/crayrun bench/%s")
                                     :format(support.build, script))
      assert.are.equal(0, status, err)
      assert.is_truthy(next(metrics(out)), script .. " printed no metric")
    end
  end)

  it("refuses a CRAY_BENCH_MAKER that is neither driver nor task, naming it", function()
    local status, out, err = with_lib("", "CRAY_BENCH_QUICK=1 CRAY_BENCH_MAKER=tasks")
    assert.are_not.equal(0, status)
    assert.are.equal("", out)
    assert.matches("CRAY_BENCH_MAKER must be 'driver' or 'task' %(got 'tasks'%)", err)
  end)

  it("rate prints per_op times the operations a second, the median of the runs", function()
    local status, out, err = with_lib([[
      local clock = 0 -- a clock that only the operations move: each takes 10 microseconds
      bench.now = function() return clock end
      bench.rate("some_rate", function()
        return function(n) clock = clock + n * 1e-5 end
      end, {per_op = 2})
    ]])
    assert.are.equal(0, status, err)
    local got = metrics(out).some_rate
    assert.is_true(math.abs(got - 2e5) < 1, tostring(got))
    assert.matches("some_rate .* per_second %(%d+ ops a run%)", err)
  end)

  it("measure prints the median of its runs, after a warm-up call it ignores", function()
    local status, out, err = with_lib([[
      local figures, i = {1000, 30, 10, 20}, 0
      bench.measure("some_bytes", "bytes", function() i = i + 1; return figures[i] end)
      local evens, j = {1000, 40, 10, 20, 30}, 0
      bench.measure("some_seconds", "seconds", function() j = j + 1; return evens[j] end)
    ]], "CRAY_BENCH_QUICK=1 CRAY_BENCH_RUNS=3")
    assert.are.equal(0, status, err)
    assert.are.equal("some_bytes 20 bytes\nsome_seconds 20.000000 seconds\n", out)
    status, out, err = with_lib([[
      local evens, j = {1000, 40, 10, 20, 30}, 0
      bench.measure("some_seconds", "seconds", function() j = j + 1; return evens[j] end)
    ]], "CRAY_BENCH_QUICK=1 CRAY_BENCH_RUNS=4")
    assert.are.equal(0, status, err)
    assert.are.equal("some_seconds 25.000000 seconds\n", out)
  end)

  it("measure_all prints a line for each figure of one workload, the filter's only", function()
    local body = [[
      local runs = 0
      bench.measure_all({{"some_rate", "per_second"}, {"some_bytes", "bytes"}}, function()
        runs = runs + 1
        return 10 * runs, runs
      end)
      io.stderr:write("runs: ", runs, "\n")
      bench.measure_all({{"other_rate", "per_second"}}, function() error("ran") end)
    ]]
    local status, out, err = with_lib(body, "CRAY_BENCH_QUICK=1 CRAY_BENCH_RUNS=3 "
                                            .. "CRAY_BENCH_FILTER=some_")
    assert.are.equal(0, status, err)
    assert.are.equal("some_rate 30 per_second\nsome_bytes 3 bytes\n", out)
    assert.matches("runs: 4\n", err)
    status, out, err = with_lib(body, "CRAY_BENCH_QUICK=1 CRAY_BENCH_RUNS=3 "
                                      .. "CRAY_BENCH_FILTER=bytes")
    assert.are.equal(0, status, err)
    assert.are.equal("some_bytes 3 bytes\n", out)
  end)

  it("measure_all refuses a workload that returns fewer figures than metrics", function()
    local status, out, err = with_lib([[
      bench.measure_all({{"a_rate", "per_second"}, {"a_size", "bytes"}}, function()
        return 1
      end)
    ]])
    assert.are_not.equal(0, status)
    assert.are.equal("", out)
    assert.matches("a_size: the workload returned nil, not its figure", err)
  end)

  it("sink's wait returns once the sink has had its n done messages", function()
    local status, out, err = with_lib([[
      local cray = require "cray"
      local sink, wait = bench.sink(3)
      local tell = cray.remote(function(s) s.done.options{num_returns = 0}.remote() end)
      for _ = 1, 3 do tell.remote(sink) end
      wait()
      print("finished")
    ]])
    assert.are.equal(0, status, err)
    assert.are.equal("finished\n", out)
  end)

  it("sink's wait raises when the sink will not have its done messages", function()
    local status, out, err = with_lib([[
      local sink, wait = bench.sink(2)
      sink.done.options{num_returns = 0}.remote()
      wait()
    ]])
    assert.are_not.equal(0, status)
    assert.are.equal("", out)
    assert.matches("bench: the workload did not finish: .*deadlock", err)
    status, out, err = with_lib([[
      local cray = require "cray"
      local sink, wait = bench.sink(2)
      cray.kill(sink)
      wait()
    ]])
    assert.are_not.equal(0, status)
    assert.matches("bench: the workload did not finish: killed", err)
  end)

  it("refuses a bad name or unit, naming it", function()
    local status, out, err = with_lib([[bench.measure("no spaces", "bytes", tonumber)]])
    assert.are_not.equal(0, status)
    assert.are.equal("", out)
    assert.matches("no spaces", err)
    status, out, err = with_lib([[bench.measure("m", "furlongs", tonumber)]])
    assert.are_not.equal(0, status)
    assert.matches("unknown unit furlongs", err)
  end)

  it("skips the set-up of metrics the filter leaves out", function()
    local status, out, err = with_lib([[
      bench.rate("left_out", function() error("set-up ran") end)
      bench.measure("kept", "seconds", function() return 1 end)
    ]], "CRAY_BENCH_QUICK=1 CRAY_BENCH_FILTER=kept")
    assert.are.equal(0, status, err)
    assert.are.equal("kept 1.000000 seconds\n", out)
  end)
end)

describe("bench/peers", function()
  local function peers(env)
    return support.run(("B=%s %s sh bench/peers"):format(support.build, env))
  end

  -- Runs bench/peers with env: it succeeds, prints no figure, and says why it skipped.
  local function skips(env, why)
    local status, out, err = peers(env)
    assert.are.equal(0, status)
    assert.are.equal("", out)
    assert.matches("skipped: " .. why, err, 1, true)
  end

  it("says plainly that it is skipped, and succeeds, when escript is absent", function()
    skips("ESCRIPT=/nonexistent/escript", "escript is not installed")
  end)

  it("says plainly that it is skipped when the peer script is absent", function()
    skips("ESCRIPT=sh PEER=/nonexistent/bench.escript",
          "the Erlang peer /nonexistent/bench.escript is absent")
  end)

  it("prints cray's median, the peer's and their ratio for each benchmark", function()
    -- A stand-in for escript that answers as the peer does, 2000 messages a second.
    local fake = os.tmpname()
    local f = assert(io.open(fake, "w"))
    f:write('#!/bin/sh\necho "RESULT erlang $2 msgs_per_s 2000"\n')
    f:close()
    assert.are.equal(0, (support.run("chmod +x " .. fake)))
    local status, out, err = peers(("CRAY_BENCH_QUICK=1 ROUNDS=1 FILTER=counting "
                                    .. "ESCRIPT=%s PEER=%s"):format(fake, fake))
    os.remove(fake)
    assert.are.equal(0, status, err)
    local c, e, ratio = out:match("^savina_counting ([%d.e+]+) (%d+) ([%d.]+)\n$")
    assert.is_truthy(c, out)
    assert.are.equal("2000", e)
    assert.are.equal(("%.2f"):format(tonumber(c) / 2000), ratio)
  end)
end)
