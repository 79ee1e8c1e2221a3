local support = require "spec.support"
local json = require "dkjson"
local cray = support.fresh({workers = 2})

-- The trace file at path, decoded (fails the spec when it is not JSON).
local function load(path)
  local text = support.read(path)
  local doc, _, err = json.decode(text)
  assert(doc, ("%s is not JSON: %s"):format(path, tostring(err)))
  return doc
end

local function track(e) return e.pid .. "/" .. e.tid end

-- Checks what every trace must hold, and returns its events by kind: X slices nest on
-- each track, async begins and ends pair up, and every flow joins two slices.
local function check(doc)
  assert.is_table(doc.traceEvents)
  assert.is_number(doc.metadata.dropped_events)
  local slices, flows, asyncs, names = {}, {}, {}, {}
  for _, e in ipairs(doc.traceEvents) do
    assert.is_string(e.ph)
    assert.is_number(e.pid)
    assert.is_number(e.tid)
    assert.is_number(e.ts)
    assert.is_string(e.name)
    if e.ph == "X" then
      assert.is_true(e.dur >= 0, "a slice's duration")
      slices[#slices + 1] = e
    elseif e.ph == "s" or e.ph == "f" then
      flows[#flows + 1] = e
    elseif e.ph == "b" or e.ph == "e" then
      asyncs[#asyncs + 1] = e
    elseif e.ph == "M" and e.name == "thread_name" then
      names[track(e)] = e.args.name
    else
      assert.are.equal("M", e.ph)
    end
  end
  -- slices on one track nest (each begins and ends inside the ones open around it)
  local by_track = {}
  for _, e in ipairs(slices) do
    local t = track(e)
    by_track[t] = by_track[t] or {}
    table.insert(by_track[t], e)
    assert.is_string(names[t], "every track is named")
  end
  for _, list in pairs(by_track) do
    table.sort(list, function(a, b) return a.ts < b.ts or (a.ts == b.ts and a.dur > b.dur) end)
    local open = {}
    for _, e in ipairs(list) do
      while #open > 0 and open[#open].ts + open[#open].dur <= e.ts do open[#open] = nil end
      local top = open[#open]
      if top then assert.is_true(e.ts + e.dur <= top.ts + top.dur + 0.0015, "slices nest") end
      open[#open + 1] = e
    end
  end
  -- each async begin has its end, later
  local begun = {}
  for _, e in ipairs(asyncs) do
    local k = e.cat .. " " .. e.id
    if e.ph == "b" then
      assert.is_nil(begun[k])
      begun[k] = e
    end
  end
  for _, e in ipairs(asyncs) do
    if e.ph == "e" then
      local b = begun[e.cat .. " " .. e.id]
      assert.is_table(b, "an async end has its begin")
      assert.is_true(e.ts >= b.ts)
      begun[e.cat .. " " .. e.id] = nil
    end
  end
  assert.are.same({}, begun)
  -- flows: a start and a finish for each id, each inside a slice on its own track
  local ends = {}
  for _, e in ipairs(flows) do
    local k = e.cat .. " " .. e.id
    ends[k] = ends[k] or {}
    assert.is_nil(ends[k][e.ph], "one start and one finish per flow")
    ends[k][e.ph] = e
    if e.ph == "f" then assert.are.equal("e", e.bp) end
    local inside = false
    for _, x in ipairs(by_track[track(e)] or {}) do
      if x.ts <= e.ts and e.ts <= x.ts + x.dur then inside = true end
    end
    assert.is_true(inside, ("flow %s %s at %s lies in a slice"):format(e.ph, k, e.ts))
  end
  for k, pair in pairs(ends) do
    assert.is_table(pair.s, k .. " has its start")
    assert.is_table(pair.f, k .. " has its finish")
    assert.is_true(pair.f.ts >= pair.s.ts, k .. " goes forward in time")
  end
  return {slices = slices, flows = flows, asyncs = asyncs, names = names}
end

-- The task slices named name, in time order.
local function task_slices(t, name)
  local out = {}
  for _, e in ipairs(t.slices) do
    if e.cat == "task" and e.name == name then out[#out + 1] = e end
  end
  table.sort(out, function(a, b) return a.ts < b.ts end)
  return out
end

-- Writes the timeline to path and checks it, until done(trace) holds: a worker records a
-- stretch of a task when the stretch returns, just after the task's results resolve, so
-- the driver can write before the last one is in.
local function write(path, done)
  for _ = 1, 200 do
    local events, dropped = cray.timeline(path)
    assert.is_true(events > 0)
    assert.are.equal(0, dropped)
    local t = check(load(path))
    if done(t) then return t end
    cray.sleep(0.01)
  end
  error("the timeline never showed what the spec ran")
end

-- done() for write: n slices of each named task.
local function has(names)
  return function(t)
    for name, n in pairs(names) do
      if #task_slices(t, name) < n then return false end
    end
    return true
  end
end

describe("cray.timeline", function()
  local path = os.tmpname()
  setup(function() cray.timeline() end)
  teardown(function()
    cray.timeline(false)
    os.remove(path)
  end)

  it("writes Chrome trace events: a track per worker and the driver, slices per task", function()
    local sq = cray.remote(function(x) return x * x end).options{name = "tl_square"}
    local refs = {}
    for i = 1, 20 do refs[i] = sq.remote(i) end
    assert.are.equal(4, cray.get(refs)[2])
    local t = write(path, has{tl_square = 20})
    local tracks = {}
    for _, name in pairs(t.names) do tracks[name] = true end
    assert.is_true(tracks.driver)
    assert.is_true(tracks["worker 0"] or tracks["worker 1"])
    local s = task_slices(t, "tl_square")
    assert.are.equal(20, #s)
    for _, e in ipairs(s) do
      assert.matches("^%x+$", e.args.task)
      assert.are.equal(32, #e.args.task)
      assert.is_true(e.args.arg_bytes > 0)
      assert.is_true(e.args.result_bytes >= 1)
      assert.are.equal("finished", e.args.outcome)
      assert.are.equal(1, e.args.attempt)
      assert.matches("^worker %d$", t.names[track(e)])
    end
  end)

  it("draws a flow from each submission to the task's slice", function()
    local id = cray.remote(function(x) return x end).options{name = "tl_flow"}
    cray.get(id.remote(1))
    local t = write(path, has{tl_flow = 1})
    local task = task_slices(t, "tl_flow")[1]
    local found
    for _, e in ipairs(t.flows) do
      if e.cat == "submit" and e.id == task.args.task and e.ph == "s" then found = e end
    end
    assert.is_table(found)
    assert.are.equal("driver", t.names[track(found)])
  end)

  it("draws a flow from the dependency's end to the task it released", function()
    -- the flow exists when the argument was still pending once the submission subscribed to
    -- it: on a loaded machine the producer may end first (the task then shows no release), so
    -- the run is tried again, with new names, until it was
    for k = 1, 10 do
      local slow_name, inc_name = "tl_slow" .. k, "tl_inc" .. k
      local slow = cray.remote(function() cray.sleep(0.05) return 2 end).options{name = slow_name}
      local inc = cray.remote(function(x) return x + 1 end).options{name = inc_name}
      assert.are.equal(3, cray.get(inc.remote(slow.remote())))
      local t = write(path, has{[slow_name] = 2, [inc_name] = 1})
      local task = task_slices(t, inc_name)[1]
      local producer = task_slices(t, slow_name)
      local last = producer[#producer]
      local released
      for _, e in ipairs(t.slices) do
        if e.name == "release " .. inc_name then released = e end
      end
      if released then
        local from, to
        for _, e in ipairs(t.flows) do
          if e.cat == "dep" and e.id == task.args.task then
            if e.ph == "s" then from = e else to = e end
          end
        end
        assert.is_table(from)
        assert.are.equal(track(task), track(to))
        -- the release happens inside the producer's slice
        assert.are.equal(track(last), track(from))
        assert.is_true(last.ts <= from.ts and from.ts <= last.ts + last.dur)
        return
      end
    end
    error("the argument was never pending at submission")
  end)

  it("shows waits: cray.get and cray.sleep inside a task, cray.get on the driver", function()
    local leaf = cray.remote(function() cray.sleep(0.02) return 1 end).options{name = "tl_leaf"}
    local outer = cray.remote(function(f) return cray.get(f.remote()) + 1 end)
      .options{name = "tl_outer"}
    assert.are.equal(2, cray.get(outer.remote(leaf)))
    local t = write(path, has{tl_outer = 2, tl_leaf = 2})
    local outer_id = task_slices(t, "tl_outer")[1].args.task
    local leaf_id = task_slices(t, "tl_leaf")[1].args.task
    local waits = {}
    for _, e in ipairs(t.asyncs) do
      if e.ph == "b" then waits[e.args.task .. " " .. e.name] = e end
    end
    assert.is_table(waits[outer_id .. " cray.get"])
    assert.is_table(waits[leaf_id .. " cray.sleep"])
    assert.are.equal("tl_outer", waits[outer_id .. " cray.get"].args["in"])
    -- the driver blocked in cray.get meanwhile: a slice on its track
    local blocked = false
    for _, e in ipairs(t.slices) do
      if e.name == "cray.get" and e.cat == "wait" and t.names[track(e)] == "driver" then blocked = true end
    end
    assert.is_true(blocked)
    -- the task that waited runs in two stretches, the first suspended
    local s = task_slices(t, "tl_outer")
    assert.are.equal(2, #s)
    assert.are.same({"suspended", "finished"}, {s[1].args.outcome, s[2].args.outcome})
  end)

  it("shows a failed task's kind", function()
    local bad = cray.remote(function() error("no") end).options{name = "tl_bad"}
    assert.is_false(pcall(cray.get, bad.remote()))
    local s = task_slices(write(path, has{tl_bad = 1}), "tl_bad")
    assert.are.equal(1, #s)
    assert.are.same({"failed", "task_error"}, {s[1].args.outcome, s[1].args.kind})
  end)

  it("shows a cancelled task as cancelled", function()
    local nap = cray.remote(function() cray.sleep(30) end).options{name = "tl_nap"}
    local ref = nap.remote()
    support.eventually(cray, function() return cray.stats().tasks.running > 0 end, "nap runs")
    cray.cancel(ref)
    assert.are.equal("cancelled", support.error_of(cray.get, ref).kind)
    local s = task_slices(write(path, has{tl_nap = 1}), "tl_nap")
    assert.are.same({"cancelled", "cancelled"}, {s[#s].args.outcome, s[#s].args.kind})
  end)

  it("shows a retried task's attempts", function()
    local flaky = cray.remote(function() error("again") end)
      .options{name = "tl_retry", max_retries = 1, retry_exceptions = true}
    assert.is_false(pcall(cray.get, flaky.remote()))
    local s = task_slices(write(path, has{tl_retry = 2}), "tl_retry")
    assert.are.equal(2, #s)
    assert.are.same({"retried", 1}, {s[1].args.outcome, s[1].args.attempt})
    assert.are.same({"failed", 2, "task_error"}, {s[2].args.outcome, s[2].args.attempt, s[2].args.kind})
    assert.are.equal(s[1].args.task, s[2].args.task)
  end)

  it("names actor calls Class.method and gives their actor", function()
    local Counter = cray.actor{
      __name = "TlCounter",
      init = function(self) self.n = 0 end,
      incr = function(self) self.n = self.n + 1; return self.n end,
    }
    local c = Counter.remote()
    cray.get(c.incr.remote())
    -- until incr's stretch is in (a slice of its end alone, written before, has no actor)
    local t = write(path, function(tl)
      local s = task_slices(tl, "TlCounter.incr")[1]
      return has{["TlCounter.init"] = 1}(tl) and s and s.args.actor ~= nil
    end)
    local init, incr = task_slices(t, "TlCounter.init")[1], task_slices(t, "TlCounter.incr")[1]
    assert.is_table(init)
    assert.is_table(incr)
    assert.is_string(incr.args.actor, json.encode(incr))
    assert.are.equal(32, #incr.args.actor)
    assert.are.equal(init.args.actor, incr.args.actor)
  end)

  it("refuses a path that is not a string, naming what it got", function()
    local e = support.error_of(cray.timeline, 42)
    assert.are.equal("invalid_argument", e.kind)
    assert.matches("path must be a string", e.message)
    assert.matches("not a number", e.message)
  end)

  it("says which file it could not write, and why", function()
    local e = support.error_of(cray.timeline, "/nonexistent-dir/trace.json")
    assert.are.equal("io_error", e.kind)
    assert.matches("/nonexistent%-dir/trace.json", e.message)
    assert.matches("No such file or directory", e.message)
    assert.are.equal("invalid_argument", support.error_of(cray.timeline, "").kind)
  end)
end)

describe("crayrun --timeline", function()
  it("writes the file at exit, with spill writes and restores on their tracks", function()
    local out = os.tmpname()
    local script = support.script [[
      local refs = {}
      for i = 1, 8 do refs[i] = cray.put(string.rep(string.char(64 + i), 512 * 1024)) end
      local n = 0
      for i = 1, 8 do n = n + #cray.get(refs[i]) end
      print(n)
    ]]
    local status, stdout = support.crayrun(("-m 1M --timeline %s %s"):format(out, script))
    os.remove(script)
    assert.are.equal(0, status)
    assert.are.equal("4194304\n", stdout)
    local t = check(load(out))
    os.remove(out)
    local spilled, restored = 0, 0
    for _, e in ipairs(t.slices) do
      if e.name == "spill write" then
        assert.are.equal("spill", t.names[track(e)])
        spilled = spilled + e.args.bytes
      elseif e.name == "restore" then
        assert.are.equal(32, #e.args.object)
        restored = restored + e.args.bytes
      end
    end
    assert.is_true(spilled >= 512 * 1024)
    assert.is_true(restored >= 512 * 1024)
  end)

  it("keeps the newest events when the rings fill, and counts the dropped", function()
    local out = os.tmpname()
    local script = support.script [[
      local f = cray.remote(function(x) return x end)
      local refs = {}
      for i = 1, 600 do refs[i] = f.remote(i) end
      cray.get(refs)
    ]]
    local status = support.crayrun(("-w 2 --timeline %s %s"):format(out, script), nil,
                                   {CRAY_TIMELINE_EVENTS = 256})
    os.remove(script)
    assert.are.equal(0, status)
    local doc = load(out)
    os.remove(out)
    check(doc)
    assert.are.equal(256, doc.metadata.ring_events)
    assert.is_true(doc.metadata.dropped_events > 0)
    local submits = 0
    for _, e in ipairs(doc.traceEvents) do
      if e.cat == "submit" and e.ph == "X" then submits = submits + 1 end
    end
    assert.is_true(submits > 0 and submits <= 256)
  end)

  it("refuses a file it cannot write before running anything", function()
    local status, stdout, stderr = support.crayrun("--timeline /nonexistent-dir/t.json -e 'print(1)'")
    assert.are.equal(2, status)
    assert.are.equal("", stdout)
    assert.matches("cannot write the timeline to '/nonexistent%-dir/t.json': No such file", stderr)
    status, _, stderr = support.crayrun("--timeline")
    assert.are.equal(2, status)
    assert.matches("'%-%-timeline' needs a value", stderr)
  end)
end)
