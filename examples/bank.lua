-- bank.lua: thousands of account actors, tellers moving money between them concurrently;
-- whatever the interleaving, the bank's total stays what it was.
--   crayrun examples/bank.lua [accounts] [tellers] [transfers a teller]
local cray = require "cray"

local accounts_n = tonumber(arg and arg[1]) or 2000
local tellers_n = tonumber(arg and arg[2]) or 16
local transfers_n = tonumber(arg and arg[3]) or 1000
local opening = 1000

-- An account's calls run one at a time, so a withdrawal never sees half of another.
local Account = cray.actor{
  init = function(self, balance) self.funds = balance end,
  withdraw = function(self, amount)
    if amount > self.funds then return false end
    self.funds = self.funds - amount
    return true
  end,
  deposit = function(self, amount) self.funds = self.funds + amount end,
  balance = function(self) return self.funds end,
}

-- A teller is a task: it moves random amounts between random accounts, one transfer at a
-- time; money leaves one account before it reaches the other, and a refused withdrawal
-- moves nothing. Returns how many transfers went through.
local teller = cray.remote(function(accounts, transfers)
  local done = 0
  for _ = 1, transfers do
    local from, to = math.random(#accounts), math.random(#accounts)
    local amount = math.random(100)
    if cray.get(accounts[from].withdraw.remote(amount)) then
      cray.get(accounts[to].deposit.remote(amount))
      done = done + 1
    end
  end
  return done
end)

local function total(accounts)
  local refs = {}
  for i, a in ipairs(accounts) do refs[i] = a.balance.remote() end
  local sum = 0
  for _, b in ipairs(cray.get(refs)) do sum = sum + b end
  return sum
end

local accounts = {}
for i = 1, accounts_n do accounts[i] = Account.remote(opening) end
local before = total(accounts)

local tellers = {}
for i = 1, tellers_n do tellers[i] = teller.remote(accounts, transfers_n) end
local moved = 0
for _, n in ipairs(cray.get(tellers)) do moved = moved + n end
io.stderr:write(("%d of %d transfers went through\n"):format(moved, tellers_n * transfers_n))

local after = total(accounts)
print(("%d accounts, %d tellers, %d transfers each"):format(accounts_n, tellers_n,
                                                           transfers_n))
print(("total before: %d"):format(before))
print(("total after: %d"):format(after))
if after ~= before then error(("the bank lost %d"):format(before - after)) end
