-- Ray's ActorPool example in Lua: two actors share the work of a map, results in order.
--   crayrun examples/actor_pool.lua
local cray = require "cray"
local util = require "cray.util"

local Actor = cray.actor{
  double = function(self, v) return 2 * v end,
}

local a1, a2 = Actor.remote(), Actor.remote()
local pool = util.ActorPool{a1, a2}
local out = {}
for v in pool:map(function(a, v) return a.double.remote(v) end, {1, 2, 3, 4}) do
  out[#out + 1] = v
end
print(table.concat(out, " "))  -- 2 4 6 8
