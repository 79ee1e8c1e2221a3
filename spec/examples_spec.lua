local support = require "spec.support"

local read = support.read

describe("examples", function()
  it("squares.lua prints the squares and their sum", function()
    local status, out, err = support.crayrun("examples/squares.lua 5")
    assert.are.equal(0, status, err)
    assert.are.equal("squares of 1..5: 1 4 9 16 25\nsum: 55\n", out)
  end)

  it("bank.lua moves money between 2,000 account actors and keeps the total", function()
    local status, out, err = support.crayrun("examples/bank.lua")
    assert.are.equal(0, status, err)
    assert.are.equal("2000 accounts, 16 tellers, 1000 transfers each\n"
                     .. "total before: 2000000\ntotal after: 2000000\n", out)
    assert.matches("%d+ of 16000 transfers went through", err)
  end)

  it("chat.lua: each client hears every client's hello, broadcast by the room actor", function()
    local status, out, err = support.crayrun("examples/chat.lua")
    assert.are.equal(0, status, err)
    local heard = "alice: hello from alice; bob: hello from bob; carol: hello from carol"
    assert.are.equal(("alice heard: %s\nbob heard: %s\ncarol heard: %s\n"):format(heard, heard, heard),
                     out)
  end)

  it("crawl.lua fetches every page of a local site, a bounded number in flight", function()
    local status, out, err = support.crayrun("examples/crawl.lua 40 3")
    assert.are.equal(0, status, err)
    assert.are.equal("crawled 40 pages, at most 3 in flight\n", out)
    status, out, err = support.crayrun("-w 1 examples/crawl.lua 10 2")
    assert.are.equal(0, status, err)
    assert.are.equal("crawled 10 pages, at most 2 in flight\n", out)
  end)

  it("actor_pool.lua (Ray's ActorPool example) doubles 1..4 on two actors, in order", function()
    local status, out, err = support.crayrun("examples/actor_pool.lua")
    assert.are.equal(0, status, err)
    assert.are.equal("2 4 6 8\n", out)
  end)

  it("queue.lua (Ray's Queue example) hands ten items to two consumer tasks", function()
    local status, out, err = support.crayrun("examples/queue.lua")
    assert.are.equal(0, status, err)
    assert.are.equal("Put work 0 - 9 to queue...\nconsumed: 0 1 2 3 4 5 6 7 8 9\n", out)
  end)

  it("supervisor.lua restarts a failing worker and a killed cache", function()
    local status, out, err = support.crayrun("examples/supervisor.lua")
    assert.are.equal(0, status, err)
    assert.are.equal("work(4) = 40\nwork(-1) failed: task_error\nwork(5) = 50\n"
                     .. "cache died: killed\nthe new cache starts empty: true\nwork(6) = 60\n"
                     .. "the worker found the new cache by name: 60\n"
                     .. "restarts by the supervisor: 1\nstopped: exited\n", out)
  end)

  it("embed/hello.c stores a value from C and reads it back around a Lua driver", function()
    local status, out, err = support.run(support.build .. "/examples/embed/hello")
    assert.are.equal(0, status, err)
    assert.are.equal('stored 1 object(s), 19 bytes\ndriver: 2 objects in the store\n'
                     .. 'read back: {"greeting"=>"hello", "n"=>3}\n', out)
  end)

  it("embed/logproc.c runs a log through Lua tasks, a C function and an actor", function()
    local status, out, err = support.run(support.build .. "/examples/embed/logproc examples/embed"
                                         .. " < examples/embed/access.log")
    assert.are.equal(0, status, err)
    assert.are.equal(read("spec/fixtures/logproc.out"), out)
  end)

  it("timeline.lua's run shows in its timeline, which docs/timeline_svg.lua draws", function()
    local trace = os.tmpname()
    local status, out, err = support.crayrun("-w 3 -m 1M --timeline " .. trace .. " examples/timeline.lua")
    assert.are.equal(0, status, err)
    assert.are.equal("total 3600, 1843200 bytes loaded, flaky failed\n", out)
    local doc = require("dkjson").decode(read(trace))
    local seen = {}
    for _, e in ipairs(doc.traceEvents) do
      if e.ph == "X" then seen[e.name .. " " .. tostring(e.args.outcome)] = true end
    end
    for _, want in ipairs{"load finished", "parse finished", "Sum.init finished", "Sum.add finished",
                          "flaky retried", "flaky failed", "spill write nil"} do
      assert.is_true(seen[want], want)
    end
    local picture
    status, picture, err = support.run("luajit docs/timeline_svg.lua " .. trace)
    os.remove(trace)
    assert.are.equal(0, status, err)
    assert.matches("^<svg ", picture)
    assert.matches(">worker 0<", picture)
    assert.matches(">spill<", picture)
  end)

  it("README's example is examples/squares.lua, and runs as `make run` runs it", function()
    local readme = read("README.md")
    local block = readme:match("```lua\n(.-)```")
    assert.are.equal(read("examples/squares.lua"), block)
    local makefile = read("Makefile")
    assert.is_truthy(makefile:find("crayrun examples/squares.lua 10", 1, true))
    local status, out = support.crayrun("examples/squares.lua 10")
    assert.are.equal(0, status)
    assert.matches("sum: 385\n$", out)
  end)
end)
