-- cray.timers: cray.after and cray.every, one-way calls later. Each timer is a small task
-- that sleeps (yielding its worker) and then calls target.remote(...) without waiting for
-- the result; cancelling the timer cancels that task, so a call not made yet never is. The
-- tasks' functions travel to the workers, so they use only globals (`cray`).

local errors = require "cray.errors"

local raise = errors.raise

return function(cray, core, pending)
  local Timer = pending.class("cray.Timer")
  local methods = {}
  Timer.__index = methods

  local function once(s, t, ...)
    cray.sleep(s)
    t.remote(...)
  end

  local function repeating(s, t, ...)
    while true do
      cray.sleep(s)
      t.remote(...)
    end
  end

  local function check(fn, seconds, target)
    if type(seconds) ~= "number" or not (seconds >= 0) then
      raise(3, "invalid_argument", "%s: seconds must be a number >= 0 (got %s)", fn,
            tostring(seconds))
    end
    local ok, call = pcall(function() return target.remote end)
    local mt = type(call) == "table" and getmetatable(call)
    if not ok or not (type(call) == "function" or (mt and mt.__call)) then
      raise(3, "invalid_argument",
            "%s: expects an actor method (h.method) or a remote function to call (got %s)", fn,
            type(target))
    end
  end

  -- cray.after(seconds, h.method, ...) -> timer: h.method.remote(...) in `seconds`.
  function cray.after(seconds, target, ...)
    check("cray.after", seconds, target)
    local ref = cray.remote(once, {name = "cray.after"}).remote(seconds, target, ...)
    return setmetatable({ref = ref}, Timer)
  end

  -- cray.every(seconds, h.method, ...) -> timer: h.method.remote(...) `seconds` after the
  -- previous call went out, until it is cancelled.
  function cray.every(seconds, target, ...)
    check("cray.every", seconds, target)
    if seconds == 0 then
      raise(2, "invalid_argument", "cray.every: seconds must be > 0")
    end
    local ref = cray.remote(repeating, {name = "cray.every"}).remote(seconds, target, ...)
    return setmetatable({ref = ref}, Timer)
  end

  -- timer:cancel() -> true when the timer had not ended: no call comes after it.
  function methods.cancel(timer)
    if getmetatable(timer) ~= Timer then
      raise(2, "invalid_argument", "timer:cancel: expects a timer (use timer:cancel())")
    end
    return core.cancel(timer.ref)
  end

  function Timer.__tostring(timer) return "cray.Timer " .. tostring(timer.ref) end

  -- cray.cancel takes a timer too.
  local cancel = cray.cancel
  function cray.cancel(x, ...)
    if getmetatable(x) == Timer then return core.cancel(x.ref) end
    return cancel(x, ...)
  end
end
