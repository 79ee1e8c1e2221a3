local support = require "spec.support"
local cray = support.fresh({workers = 2})

local function find(list, id)
  for _, o in ipairs(list) do
    if o.id == id then return o end
  end
end

describe("cray.objects()", function()
  it("lists each object with its id, bytes, place, maker and references", function()
    local line = debug.getinfo(1, "l").currentline + 1
    local big = cray.put(string.rep("x", 50000))
    local o = find(cray.objects(), big:hex())
    assert.are.same({50003, "memory", 1},  {o.bytes, o.where, o.refs})
    assert.are.equal(("put at %s:%d"):format(debug.getinfo(1, "S").short_src, line), o.made_by)
  end)

  it("names small puts 'put' and a task's results by the task's name", function()
    local small = cray.put(7)
    local maker = cray.remote(function(n) return string.rep("y", n) end).options{name = "objects_maker"}
    local r = maker.remote(3000)
    cray.get(r)
    local list = cray.objects()
    assert.are.equal("put", find(list, small:hex()).made_by)
    local made = find(list, r:hex())
    assert.are.equal("objects_maker", made.made_by)
    assert.are.equal("memory", made.where)
  end)

  it("counts every reference that holds an object", function()
    local inner = cray.put(string.rep("z", 2000))
    local outer = cray.put({inner})
    local holder = cray.ref(inner:hex())
    assert.are.equal(3, find(cray.objects(), inner:hex()).refs) -- inner, holder, outer's blob
    holder, outer = nil, nil
  end)

  it("sorts the largest first", function()
    local refs = {cray.put(string.rep("a", 10)), cray.put(string.rep("b", 30000)),
                  cray.put(string.rep("c", 2000))}
    local list = cray.objects()
    for i = 2, #list do assert.is_true(list[i - 1].bytes >= list[i].bytes) end
    assert.is_true(#refs == 3)
  end)

  it("shows a pending task's result as pending", function()
    local gate = cray.remote(function() cray.sleep(0.3) return 1 end).options{name = "objects_gate"}
    local r = gate.remote()
    assert.are.equal("pending", find(cray.objects(), r:hex()).where)
    cray.get(r)
  end)

  it("drops an object once it is freed", function()
    local gone = cray.put(string.rep("q", 4000))
    local id = gone:hex()
    gone = nil
    support.collect()
    local deadline = os.time() + 5
    while find(cray.objects(), id) and os.time() < deadline do support.collect() end
    assert.is_nil(find(cray.objects(), id))
  end)
end)

describe("crayrun --objects-at-exit", function()
  it("prints the live objects, largest first, in binary units", function()
    local status, _, err = support.crayrun("--objects-at-exit -e 'big = cray.put(string.rep(\"x\", 3 * 2^20))' " ..
                                           "-e 'small = cray.put(1)'")
    assert.are.equal(0, status)
    assert.matches("^objects: 2, 3%.0 MiB\n  id +bytes +where +refs +made by\n", err)
    assert.matches("\n  %x+ +3%.0 MiB +memory +1 +put at %(command line%):1\n  %x+ +1 B +memory +1 +put\n", err)
  end)
end)
