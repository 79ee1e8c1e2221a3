-- Shared by the specs: the build under test, running commands, a fresh runtime.
local ffi = require "ffi"

local M = {}

M.build = os.getenv("CRAY_BUILD") or "build"
M.san = os.getenv("CRAY_SAN") or ""

-- Under a sanitizer, luajit runs with the sanitizer's runtime preloaded (spec/run names it
-- in CRAY_PRELOAD too); the commands the specs start must not inherit it (the shell would
-- load it as well), so it is taken out of the environment.
M.preload = os.getenv("CRAY_PRELOAD") or ""
if os.getenv("LD_PRELOAD") then
  ffi.cdef "int unsetenv(const char *name);"
  ffi.C.unsetenv("LD_PRELOAD")
end

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  os.remove(path)
  return s
end

-- The whole text of a file.
function M.read(path)
  local f = assert(io.open(path))
  local s = f:read("*a")
  f:close()
  return s
end

-- Runs a shell command (with the environment variables of the table env added); returns
-- its exit status, stdout and stderr.
function M.run(cmd, stdin, env)
  local out, err = os.tmpname(), os.tmpname()
  local input = ""
  for k, v in pairs(env or {}) do cmd = ("%s=%q %s"):format(k, v, cmd) end
  if stdin then
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write(stdin)
    f:close()
    input = " < " .. path
    cmd = cmd .. input
  end
  local status = os.execute(("%s > %s 2> %s"):format(cmd, out, err))
  if status > 255 then status = math.floor(status / 256) end
  return status, slurp(out), slurp(err)
end

-- A temporary .lua file holding body; returns its path (the caller removes it).
function M.script(body)
  local path = os.tmpname() .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write(body)
  f:close()
  return path
end

-- The script at path under `mpirun -n 3 crayrun -w 1` (docs/cluster.md); returns status,
-- stdout and stderr. ranks, when given, holds each rank's further crayrun arguments, the
-- ranks joined with mpirun's MPMD `:`. Under AddressSanitizer, leak checking is off for these jobs: MPI's
-- plugins keep memory until exit and are unloaded by then, so their leaks cannot be told
-- from ours.
function M.mpirun(path, ranks)
  local crayrun = ("%s/crayrun -w 1"):format(M.build)
  local cmd = ("timeout 120 mpirun --allow-run-as-root --oversubscribe -n 3 %s %s"):format(crayrun, path)
  if ranks then
    local apps = {}
    for i, args in ipairs(ranks) do apps[i] = ("-n 1 %s %s %s"):format(crayrun, args, path) end
    cmd = "timeout 120 mpirun --allow-run-as-root --oversubscribe " .. table.concat(apps, " : ")
  end
  return M.run(cmd, "", {
    ASAN_OPTIONS = "detect_leaks=0", TSAN_OPTIONS = "suppressions=spec/fixtures/tsan_mpi.supp",
    OMPI_MCA_btl = "self,vader",
    OMPI_MCA_plm_rsh_agent = "false"})
end

-- Whether mpirun is here; when it is not, says on stderr that spec `who`'s multi-rank
-- cases are skipped.
function M.have_mpirun(who)
  if os.execute("command -v mpirun >/dev/null 2>&1") == 0 then return true end
  io.stderr:write(who .. ": mpirun is absent: the multi-rank specs are skipped\n")
  return false
end

-- Runs body as a script under M.mpirun (ranks as there), its output line-buffered and
-- rank() giving the rank it runs on; returns status, stdout and stderr.
function M.job(body, ranks)
  local path = M.script('io.stdout:setvbuf("line")\n' ..
    'local function rank() return tonumber(os.getenv("OMPI_COMM_WORLD_RANK")) end\n' .. body)
  local status, out, err = M.mpirun(path, ranks)
  os.remove(path)
  return status, out, err
end

-- The "key<TAB>value" lines of a job's output, as a table.
function M.lines(out)
  local t = {}
  for k, v in out:gmatch("([%w_]+)\t([^\n]*)\n") do t[k] = v end
  return t
end

-- crayrun from the build under test, with arguments given as one shell string.
function M.crayrun(args, stdin, env)
  return M.run(M.build .. "/crayrun " .. args, stdin, env)
end

-- Seconds on the monotonic clock, usable inside tasks (ffi travels as a module; the
-- declarations are made in whichever state runs it).
function M.clock()
  pcall(ffi.cdef, [[
    struct cray_spec_timespec { long tv_sec; long tv_nsec; };
    int clock_gettime(int clk, struct cray_spec_timespec *ts);
  ]])
  local ts = ffi.new("struct cray_spec_timespec")
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

-- Restarts cray with `opts` so a spec starts from an empty store.
function M.fresh(opts)
  local cray = require "cray"
  if cray.is_initialized() then cray.shutdown() end
  cray.init(opts)
  return cray
end

-- Checks one caller's results of calls to an actor killed meanwhile (`who` names them):
-- answers {seq, in order} up to some call, then failures of kind actor_died only.
function M.check_killed_calls(got, who)
  local assert = require "luassert"
  local dead = false
  for seq, r in ipairs(got) do
    if r.kind then
      assert.are.equal("actor_died", r.kind)
      dead = true
    else
      assert.is_false(dead, ("%s call %d ran after one failed"):format(who, seq))
      assert.are.equal(seq, r[1])
      assert.is_true(r[2])
    end
  end
end

-- The error object `fn(...)` raises (fails the spec if it raises none).
function M.error_of(fn, ...)
  local ok, e = pcall(fn, ...)
  assert(not ok, "expected an error")
  return e
end

-- Polls until fn() is true (the runtime acts on other threads), sleeping with cray.sleep;
-- fails after 10 s saying what never happened.
function M.eventually(cray, fn, what)
  for _ = 1, 1000 do
    if fn() then return end
    cray.sleep(0.01)
  end
  error("never happened: " .. what)
end

-- Calls fn until it returns a true value, sleeping a little between calls, for at most
-- `seconds` (default 60: sanitizer builds on a busy machine are slow); returns what fn
-- returned last. For what happens just after a call returns (resources given back, a
-- restart by a supervisor), never for timing.
function M.poll(fn, seconds)
  local cray = require "cray"
  local deadline = M.clock() + (seconds or 60)
  local v = fn()
  while not v and M.clock() < deadline do
    cray.sleep(0.005)
    v = fn()
  end
  return v
end

-- Runs a full garbage collection cycle until it frees nothing more.
function M.collect()
  for _ = 1, 3 do collectgarbage("collect") end
end

return M
