-- cray.report: cray.stats() and cray.objects() as tables for people (what `crayrun --stats`
-- and `crayrun --objects-at-exit` print).
--
-- report.format(stats) returns the text: one row per function and actor method, sorted by
-- total run time, then the actors, the store and the workers, with sizes in KiB/MiB/GiB
-- and times in the unit that reads best. `queued` and `deps` in the table are means per
-- call that ran (cray.stats() holds the totals).
local report = {}

-- Bytes in the largest binary unit that keeps the number at least 1.
function report.bytes(n)
  local units = {"B", "KiB", "MiB", "GiB", "TiB"}
  local u = 1
  while n >= 1024 and u < #units do
    n = n / 1024
    u = u + 1
  end
  return u == 1 and ("%d B"):format(n) or ("%.1f %s"):format(n, units[u])
end

-- Seconds in s, ms or us.
function report.seconds(t)
  if t >= 1 then return ("%.2fs"):format(t) end
  if t >= 1e-3 then return ("%.2fms"):format(t * 1e3) end
  return ("%.1fus"):format(t * 1e6)
end

-- Appends rows as aligned text to out: numbers right, the columns in `left` (the first
-- by default) left.
local function rows_to_text(rows, out, left)
  left = left or {true}
  local widths = {}
  for _, row in ipairs(rows) do
    for i, cell in ipairs(row) do widths[i] = math.max(widths[i] or 0, #cell) end
  end
  for _, row in ipairs(rows) do
    local cells = {}
    for i, cell in ipairs(row) do
      cells[i] = left[i] and cell .. (" "):rep(widths[i] - #cell) or (" "):rep(widths[i] - #cell) .. cell
    end
    out[#out + 1] = ("  " .. table.concat(cells, "  ")):gsub("%s+$", "")
  end
end

function report.format(s)
  local out = {}
  local names = {}
  for name in pairs(s.functions or {}) do names[#names + 1] = name end
  table.sort(names, function(a, b)
    local x, y = s.functions[a].total, s.functions[b].total
    if x ~= y then return x > y end
    return a < b
  end)
  local sec = report.seconds
  out[#out + 1] = ("cray stats: %.2fs, %d workers"):format(s.elapsed or 0, s.workers)
  out[#out + 1] = "functions:"
  local rows = {{"name", "calls", "failed", "retries", "total", "mean", "p50", "p99", "queued",
                 "deps"}}
  for _, name in ipairs(names) do
    local f = s.functions[name]
    local ran = math.max(f.ran, 1)
    rows[#rows + 1] = {name, ("%d"):format(f.calls), ("%d"):format(f.failed),
                       ("%d"):format(f.retries), sec(f.total), sec(f.mean), sec(f.p50),
                       sec(f.p99), sec(f.queued / ran), sec((f.deps or 0) / ran)}
  end
  if #names == 0 then out[#out + 1] = "  (none ran)" else rows_to_text(rows, out) end
  local a = s.actors
  out[#out + 1] = ("actors: %d created, %d alive, %d restarted, %d died"):format(
    a.created or 0, a.alive, a.restarted or 0, a.died or 0)
  local st, b = s.store, report.bytes
  out[#out + 1] = ("store: %s peak of %s budget, %s in %d objects now; %d puts, %d frees; "
                   .. "spilled %d objects (%s), restored %d"):format(
    b(st.peak_bytes or st.bytes), b(st.budget), b(st.bytes), st.objects, st.puts, st.frees,
    st.spilled_objects, b(st.spilled_bytes), st.restored_objects)
  if s.nodes then
    out[#out + 1] = ("nodes: %d (the lines above sum them)"):format(#s.nodes)
    local nrows = {{"node", "host", "workers", "finished", "failed", "objects", "bytes"}}
    for _, n in ipairs(s.nodes) do
      nrows[#nrows + 1] = {("%d"):format(n.node), n.host, ("%d"):format(n.workers),
                           ("%d"):format(n.tasks.finished), ("%d"):format(n.tasks.failed),
                           ("%d"):format(n.store.objects), b(n.store.bytes)}
    end
    rows_to_text(nrows, out, {false, true})
  end
  local busy = {}
  for i, f in ipairs(s.busy or {}) do busy[i] = ("%d: %.0f%%"):format(i, f * 100) end
  out[#out + 1] = "workers busy: " .. table.concat(busy, ", ")
  return table.concat(out, "\n") .. "\n"
end

-- cray.objects() as a table, largest first; past `limit` rows (default 50) one line sums
-- the rest.
function report.objects(list, limit)
  limit = limit or 50
  local total = 0
  for _, o in ipairs(list) do total = total + o.bytes end
  local out = {("objects: %d, %s"):format(#list, report.bytes(total))}
  local rows = {{"id", "bytes", "where", "refs", "made by"}}
  local rest, rest_bytes = 0, 0
  for i, o in ipairs(list) do
    if i > limit then
      rest, rest_bytes = rest + 1, rest_bytes + o.bytes
    else
      rows[#rows + 1] = {o.id, report.bytes(o.bytes), o.where, ("%d"):format(o.refs), o.made_by}
    end
  end
  if #list > 0 then rows_to_text(rows, out, {true, false, true, false, true}) end
  if rest > 0 then out[#out + 1] = ("  ... %d more, %s"):format(rest, report.bytes(rest_bytes)) end
  return table.concat(out, "\n") .. "\n"
end

return report
