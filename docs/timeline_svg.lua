-- Draws a cray timeline (the Chrome trace-event JSON of cray.timeline or crayrun
-- --timeline) as an SVG picture, much as Perfetto shows it: a lane per track, slices
-- coloured by function (failed ones outlined red, retried ones orange), submission and
-- dependency flows as arrows, waits inside tasks on lanes of their own. It made the
-- picture in docs/observability.md:
--
--   build/crayrun -w 3 -m 1M --timeline run.json examples/timeline.lua
--   luajit docs/timeline_svg.lua run.json > timeline.svg     (needs lua-dkjson)
--   rsvg-convert -o docs/timeline.png timeline.svg            (librsvg2-bin)
local json = require "dkjson"

local path = assert(arg[1], "usage: luajit docs/timeline_svg.lua TRACE.json > OUT.svg")
local f = assert(io.open(path))
local doc = assert(json.decode(f:read("*a")), path .. " is not JSON")
f:close()

local W, LEFT, RIGHT, TOP, LANE, PAD = 1400, 120, 20, 60, 34, 8

local names, sort = {}, {}
local slices, flows, waits = {}, {}, {}
local t0, t1 = math.huge, -math.huge
for _, e in ipairs(doc.traceEvents) do
  if e.ph == "M" and e.name == "thread_name" then names[e.tid] = e.args.name end
  if e.ph == "M" and e.name == "thread_sort_index" then sort[e.tid] = e.args.sort_index end
  if e.ph == "X" then
    slices[#slices + 1] = e
    t0, t1 = math.min(t0, e.ts), math.max(t1, e.ts + e.dur)
  elseif e.ph == "s" or e.ph == "f" then
    local k = e.cat .. e.id
    flows[k] = flows[k] or {}
    flows[k][e.ph] = e
  elseif e.ph == "b" then
    waits[e.cat .. e.id] = {b = e}
  elseif e.ph == "e" then
    waits[e.cat .. e.id].e = e
  end
end

-- Lanes: one per track, in Perfetto's order, then the waits packed into lanes of their own.
local tids = {}
for tid in pairs(names) do tids[#tids + 1] = tid end
table.sort(tids, function(a, b) return (sort[a] or a) < (sort[b] or b) end)
local lane_of = {}
for i, tid in ipairs(tids) do lane_of[tid] = i end
local wait_lanes, wait_list = {}, {}
for _, w in pairs(waits) do
  if w.e then wait_list[#wait_list + 1] = w end
end
table.sort(wait_list, function(a, b) return a.b.ts < b.b.ts end)
for _, w in ipairs(wait_list) do
  local k = 1
  while wait_lanes[k] and wait_lanes[k] > w.b.ts do k = k + 1 end
  wait_lanes[k] = w.e.ts
  w.lane = #tids + k
end
local lanes = #tids + #wait_lanes
local H = TOP + lanes * LANE + 50

local function x(ts) return LEFT + (ts - t0) / (t1 - t0) * (W - LEFT - RIGHT) end
local function y(lane) return TOP + (lane - 1) * LANE end

local palette = {"#4e79a7", "#59a14f", "#9c755f", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
                 "#86bcb6", "#8cd17d", "#499894"}
local colours, ncolours = {}, 0
local function colour(e)
  if e.cat == "spill" then return "#8e6c8a" end
  if e.cat == "submit" or e.cat == "dep" then return "#bab0ac" end
  if not colours[e.name] then
    ncolours = ncolours + 1
    colours[e.name] = palette[(ncolours - 1) % #palette + 1]
  end
  return colours[e.name]
end

local function esc(s) return (s:gsub("&", "&amp;"):gsub("<", "&lt;"):gsub(">", "&gt;")) end

local out = {}
local function put(fmt, ...) out[#out + 1] = fmt:format(...) end

put('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">', W, H)
put('<rect width="%d" height="%d" fill="white"/>', W, H)
put('<defs><marker id="arrow" markerWidth="6" markerHeight="6" refX="5" refY="3" orient="auto">'
    .. '<path d="M0,0 L6,3 L0,6 z" fill="#1f5fa8"/></marker></defs>')
put('<text x="%d" y="20" font-size="14" font-weight="bold">%s</text>', LEFT, esc(arg[2] or "cray timeline"))

-- the time axis, in milliseconds
local span = (t1 - t0) / 1000
local step = 1
for _, s in ipairs{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000} do
  step = s
  if span / s <= 12 then break end
end
for ms = 0, span, step do
  local px = x(t0 + ms * 1000)
  put('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e4e4e4"/>', px, TOP - 8, px, H - 40)
  put('<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%g ms</text>', px, TOP - 14, ms)
end

for i, tid in ipairs(tids) do
  put('<rect x="0" y="%d" width="%d" height="%d" fill="%s"/>', y(i), W, LANE, i % 2 == 0 and "#f7f7f7" or "#ffffff")
  put('<text x="8" y="%d">%s</text>', y(i) + LANE / 2 + 4, esc(names[tid]))
end
for k = 1, #wait_lanes do
  put('<text x="8" y="%d" fill="#555">%s</text>', y(#tids + k) + LANE / 2 + 4, k == 1 and "waits" or "")
end

-- slices: nested ones (a submission or release inside a task) drawn smaller, on top
table.sort(slices, function(a, b) return a.ts < b.ts or (a.ts == b.ts and a.dur > b.dur) end)
local open = {}
for _, e in ipairs(slices) do
  local stack = open[e.tid] or {}
  open[e.tid] = stack
  while #stack > 0 and stack[#stack].ts + stack[#stack].dur <= e.ts do stack[#stack] = nil end
  local depth = #stack
  stack[#stack + 1] = e
  local lane = lane_of[e.tid]
  if lane then
    local px, pw = x(e.ts), math.max(1, x(e.ts + e.dur) - x(e.ts))
    local top = y(lane) + 3 + depth * 7
    local h = LANE - 6 - depth * 10
    local a = e.args or {}
    local stroke = a.outcome == "failed" and ' stroke="#d62728" stroke-width="2"'
                or a.outcome == "retried" and ' stroke="#ff7f0e" stroke-width="2"'
                or a.outcome == "cancelled" and ' stroke="#7f7f7f" stroke-width="2"' or ""
    put('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"%s><title>%s</title></rect>', px, top, pw,
        math.max(h, 4), colour(e), stroke, esc(e.name))
    local label = e.name .. (a.outcome and a.outcome ~= "finished" and (" (" .. a.outcome .. ")") or "")
    if e.cat == "spill" then label = ("%s %.0f KiB"):format(e.name, (a.bytes or 0) / 1024) end
    if depth == 0 and pw > #label * 6.2 + 6 then
      put('<text x="%.1f" y="%d" fill="white">%s</text>', px + 3, top + h / 2 + 4, esc(label))
    end
  end
end

for _, w in ipairs(wait_list) do
  local px, pw = x(w.b.ts), math.max(1, x(w.e.ts) - x(w.b.ts))
  put('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#d3d3d3" stroke="#999"/>', px, y(w.lane) + 8, pw, LANE - 16)
  local label = ("%s in %s"):format(w.b.name, w.b.args["in"])
  if pw > #label * 6.2 + 6 then
    put('<text x="%.1f" y="%d">%s</text>', px + 3, y(w.lane) + LANE / 2 + 4, esc(label))
  end
end

for _, fl in pairs(flows) do
  if fl.s and fl.f and lane_of[fl.s.tid] and lane_of[fl.f.tid] then
    local y1 = y(lane_of[fl.s.tid]) + LANE / 2
    local y2 = y(lane_of[fl.f.tid]) + LANE / 2
    put('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#1f5fa8" stroke-opacity="%s" marker-end="url(#arrow)"/>',
        x(fl.s.ts), y1, x(fl.f.ts), y2, fl.s.cat == "dep" and "0.9" or "0.35")
  end
end

put('<text x="%d" y="%d" fill="#555">arrows: submission to start (pale), dependency to the task it '
    .. 'released (dark); outlined red: failed, orange: retried; grey bars: waits inside tasks</text>',
    LEFT, H - 16)
put("</svg>")
io.write(table.concat(out, "\n"), "\n")
