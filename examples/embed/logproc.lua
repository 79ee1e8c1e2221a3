-- logproc: the Lua half of logproc.c, found by the workers as module "logproc": a task
-- that parses a log line, and the actor class that adds up what the lines say.

local M = {}

-- "2026-11-30T10:00:01 GET /index.html 200 5120" -> {method, path, status, bytes}
function M.parse(line)
  local method, path, status, bytes = line:match("^%S+%s+(%u+)%s+(%S+)%s+(%d+)%s+(%d+)%s*$")
  if not method then error(("malformed line %q"):format(line), 0) end
  return {method = method, path = path, status = tonumber(status), bytes = tonumber(bytes)}
end

-- One per run: counts lines by status, by size bucket (from the C function) and by
-- request, and sums the bytes.
M.Aggregator = {
  init = function(self)
    self.counts, self.lines, self.bytes = {}, 0, 0
  end,

  add = function(self, rec, bucket)
    self.lines = self.lines + 1
    self.bytes = self.bytes + rec.bytes
    for _, key in ipairs{"status " .. rec.status, "size " .. bucket, rec.method .. " " .. rec.path} do
      self.counts[key] = (self.counts[key] or 0) + 1
    end
  end,

  -- The totals as lines of text, sorted.
  report = function(self)
    local keys = {}
    for k in pairs(self.counts) do keys[#keys + 1] = k end
    table.sort(keys)
    local out = {("%d lines, %d bytes"):format(self.lines, self.bytes)}
    for _, k in ipairs(keys) do out[#out + 1] = ("%s: %d"):format(k, self.counts[k]) end
    return out
  end,
}

return M
