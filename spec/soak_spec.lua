-- The soak (spec/soak/soak.lua), briefly: CI runs it for a minute under each sanitizer
-- (make soak); here a few seconds prove the load runs and its account closes.
local support = require "spec.support"

describe("soak", function()
  it("accounts for every ref of a few seconds' mixed load: none hung, none wrong", function()
    local status, out, err = support.crayrun("spec/soak/soak.lua 3 7")
    assert.equals(0, status, err)
    local total, finished, failed, cancelled, hung, wrong = out:match(
      "soak: (%d+) refs in %d+ rounds: (%d+) finished, (%d+) failed as expected, " ..
      "(%d+) cancelled; (%d+) hung, (%d+) wrong %(seed 7")
    assert.truthy(total, out)
    assert.equals(tonumber(total), finished + failed + cancelled + hung + wrong)
    assert.equals("0", hung)
    assert.equals("0", wrong)
    assert.is_true(tonumber(finished) > 0 and tonumber(failed) > 0)
  end)
end)
