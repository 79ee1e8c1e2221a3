-- Savina's Fork-Join creation: create N actors and send each one message, which it
-- answers; get all the answers. Figure: actors a second (creation, message and answer);
-- N = 100,000, as in the Erlang peer (peers/erlang/bench.escript fj_create).
--   build/crayrun bench/savina/fj_creation.lua
local bench = require "bench.lib"
local cray = require "cray"

local N = bench.quick and 1000 or 100000

local Worker = cray.actor{
  init = function(self, i) self.i = i end,
  msg = function(self) return self.i end,
}

bench.measure("savina_fj_creation", "per_second", function()
  local refs = {}
  local t0 = bench.now()
  for i = 1, N do refs[i] = Worker.remote(i).msg.remote() end
  local answers = cray.get(refs)
  local seconds = bench.now() - t0
  for i = 1, N do
    if answers[i] ~= i then
      error(("fj_creation: actor %d answered %s"):format(i, tostring(answers[i])))
    end
  end
  return N / seconds
end)
