/*
 * executor.c: see executor.h.
 *
 * Everything here runs on worker threads, each touching only its own xworker and state.
 * A task's coroutine is anchored in the registry; t->exec holds (generation << 32 | ref)
 * so a resumption after the state was rebuilt is recognised as lost.
 *
 * Coroutines are reused: each runs TRAMPOLINE, a loop that calls the current task's
 * function (from `task_function`) with its arguments (from `task_args`), and hands what
 * it returned to `finish`, which stores the results and yields back to x_run. A coroutine
 * whose task finished goes back to a small pool of idle ones, keeping its registry
 * reference; one whose task raised or yielded on its own is dropped. The function of the
 * last task started is kept as an upvalue of `task_function`, in front of the cache by
 * function id (REG_FNCACHE).
 *
 * Isolation: the state's allocator counts every byte allocated or freed while a task (or
 * actor call) runs against that task (t->heap), and refuses the allocation that would take
 * it past its share (--task-memory). Lua raises "not enough memory" in the task, which
 * fails with out_of_memory alone: the state and every other task and actor in it go on.
 * Frees count too, so a task that makes and drops temporaries is charged for what it
 * keeps; the collector's frees of others' garbage, met while it runs, are credited to it
 * (the count is an estimate that errs towards leniency). Only when the state as a whole
 * passes --worker-memory is it beyond saving and rebuilt.
 *
 * Interrupts: x_interrupt, called from another thread while this worker runs a task,
 * arms a count hook in the worker's state (lua_sethook, which LuaJIT lets another thread
 * or a signal handler call: it only sets the hook's fields). The hook runs on the worker:
 * if the running task is cancelled or the runtime stops, it raises `cancelled` there, and
 * stays armed until the task ends (a task that catches the error is interrupted again);
 * otherwise it disarms itself. `hook_mu` keeps the state from being closed or rebuilt
 * while another thread arms the hook. LuaJIT does not call hooks from machine code it
 * compiled: a loop compiled into a trace that never leaves it cannot be interrupted.
 */
#include "executor.h"

#include <lauxlib.h>
#include <lualib.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/actor.h"
#include "../runtime/alloc.h"
#include "../runtime/io.h"
#include "../runtime/log.h"
#include "../runtime/runtime.h"
#include "../runtime/wait.h"
#include "../runtime/stream.h"
#include "../runtime/trace.h"
#include "codec.h"
#include "module.h"
#include "objref.h"

const char cray__retry_token = 0;

#define POOL 64 /* idle coroutines kept per worker */
#define HOOK_COUNT 1000 /* instructions between two calls of the interrupt hook */

/* The body of every task coroutine. Calling the function as the result of a call, not
 * through a named variable, leaves tracebacks to show it as "function <file:line>". */
#define TRAMPOLINE_SOURCE "[cray.trampoline]" /* one of cray's chunks (lstate.h) */
static const char TRAMPOLINE[] =
    "local task_function, task_args, finish = ...\n"
    "return function() while true do finish(task_function()(task_args())) end end\n";

typedef struct exec_ctx {
  cray_runtime *rt;
  char *path, *cpath;
} exec_ctx;

typedef struct xworker {
  exec_ctx *ctx;
  int index;
  pthread_mutex_t hook_mu; /* guards L against x_interrupt from other threads */
  int interrupted;     /* the hook raised in the running task */
  lua_State *L;
  cray__lstate *ls;
  uint32_t gen;        /* state generation, bumped when it is rebuilt */
  size_t used, limit;  /* heap bytes, and the limit (0: none) */
  size_t share;        /* the heap bytes one task may take, net (0: no share) */
  int oom;             /* an allocation was refused since the state was made */
  int over_share;      /* an allocation of the running task was refused: past its share */
  cray__task *current; /* the task running, and its coroutine */
  lua_State *current_co;
  int armed;           /* the running task armed a wait before yielding */
  int finished;        /* the running task's results are stored (finish ran) */
  int trampoline;      /* registry reference of the coroutines' body */
  const cray__entry *last_fn; /* the entry of the function task_function keeps */
  cray_id last_fn_id;  /* its id, as entries are reused */
  const cray__entry *last_cls; /* the class of the last actor call, kept in registry slot */
  cray_id last_cls_id;
  int cls_slot;
  int nidle;           /* idle coroutines: registry references and threads */
  int idle_ref[POOL];
  lua_State *idle_co[POOL];
} xworker;

/* ---- the state ---- */

static void *counting_alloc(void *ud, void *p, size_t osize, size_t nsize) {
  xworker *xw = ud;
  cray__task *t = xw->current;
  if (nsize == 0) {
    free(p);
    xw->used -= osize;
    if (t) t->heap -= (ptrdiff_t)osize;
    return NULL;
  }
  if (xw->limit && nsize > osize && xw->used - osize + nsize > xw->limit) {
    xw->oom = 1;
    return NULL;
  }
  if (t && xw->share && nsize > osize &&
      t->heap + (ptrdiff_t)(nsize - osize) > (ptrdiff_t)xw->share) {
    xw->over_share = 1;
    return NULL;
  }
  void *q = realloc(p, nsize);
  if (!q) {
    xw->oom = 1;
    return NULL;
  }
  xw->used = xw->used - osize + nsize;
  if (t) t->heap += (ptrdiff_t)nsize - (ptrdiff_t)osize;
  return q;
}

static int task_function(lua_State *L);
static int noop(lua_State *L);
static int task_args(lua_State *L);
static int finish(lua_State *L);

/* print(...) in a worker state: Lua's text (each value through the global tostring, tabs
 * between, a newline after), but handed to stdout in one fwrite, which holds the stream's
 * lock throughout: lines printed by different workers never mix. With tag_output each line
 * starts with "(task name wN) ", outside a task with "(wN) ". */
static int worker_print(lua_State *L) {
  xworker *xw = lua_touserdata(L, lua_upvalueindex(1));
  int n = lua_gettop(L);
  lua_getglobal(L, "tostring");
  for (int i = 1; i <= n; i++) {
    lua_pushvalue(L, n + 1);
    lua_pushvalue(L, i);
    lua_call(L, 1, 1);
    if (!lua_isstring(L, -1)) return luaL_error(L, "'tostring' must return a string to 'print'");
    lua_replace(L, i);
  }
  lua_settop(L, n);
  char tag[160] = "";
  if (xw->ctx->rt->opts.tag_output) {
    const cray__task *t = xw->current;
    if (t) snprintf(tag, sizeof tag, "(%.128s w%d) ", t->name ? t->name : "?", xw->index);
    else snprintf(tag, sizeof tag, "(w%d) ", xw->index);
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, tag);
  for (int i = 1; i <= n; i++) {
    size_t len;
    const char *s = lua_tolstring(L, i, &len);
    if (i > 1) luaL_addchar(&b, '\t');
    const char *nl;
    while (tag[0] && (nl = memchr(s, '\n', len))) { /* each line after the first: tagged */
      size_t line = (size_t)(nl + 1 - s);
      luaL_addlstring(&b, s, line);
      luaL_addstring(&b, tag);
      s += line;
      len -= line;
    }
    luaL_addlstring(&b, s, len);
  }
  luaL_addchar(&b, '\n');
  luaL_pushresult(&b);
  size_t len;
  const char *text = lua_tolstring(L, -1, &len);
  fwrite(text, 1, len, stdout);
  return 0;
}

static int boot(lua_State *L) {
  xworker *xw = lua_touserdata(L, 1);
  luaL_openlibs(L);
  lua_pushlightuserdata(L, xw);
  lua_pushcclosure(L, worker_print, 1);
  lua_setglobal(L, "print");
  lua_pushlightuserdata(L, xw);
  lua_setfield(L, LUA_REGISTRYINDEX, CRAY__REG_WORKER);
  lua_getglobal(L, "package");
  if (xw->ctx->path) {
    lua_pushstring(L, xw->ctx->path);
    lua_setfield(L, -2, "path");
  }
  if (xw->ctx->cpath) {
    lua_pushstring(L, xw->ctx->cpath);
    lua_setfield(L, -2, "cpath");
  }
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_cray);
  lua_setfield(L, -2, "cray");
  lua_getglobal(L, "require");
  lua_pushliteral(L, "cray");
  lua_call(L, 1, 1);
  lua_setglobal(L, "cray");
  if (luaL_loadbuffer(L, TRAMPOLINE, sizeof TRAMPOLINE - 1, "=" TRAMPOLINE_SOURCE) != 0)
    return lua_error(L);
  lua_pushlightuserdata(L, xw);
  lua_pushnil(L); /* the last function */
  lua_pushcfunction(L, noop);
  lua_pushcclosure(L, task_function, 3);
  lua_pushlightuserdata(L, xw);
  lua_pushcclosure(L, task_args, 1);
  lua_pushlightuserdata(L, xw);
  lua_pushcclosure(L, finish, 1);
  lua_call(L, 3, 1);
  xw->trampoline = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushboolean(L, 0);
  xw->cls_slot = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

static int open_state(xworker *xw) {
  xw->used = 0;
  xw->oom = 0;
  xw->nidle = 0;
  xw->last_fn = NULL;
  xw->last_cls = NULL;
  xw->L = lua_newstate(counting_alloc, xw);
  if (!xw->L) return 0;
  if (lua_cpcall(xw->L, boot, xw) != 0) {
    lua_close(xw->L);
    xw->L = NULL;
    return 0;
  }
  cray__module_attach(xw->L, xw->ctx->rt);
  xw->ls = cray__lstate_get(xw->L);
  xw->ls->wait = cray__exec_arm; /* module.c waits through it */
  xw->gen++;
  return 1;
}

/* Makes the state when it is missing (under hook_mu); 0 when it cannot. */
static int have_state(xworker *xw) {
  if (xw->L) return 1;
  pthread_mutex_lock(&xw->hook_mu);
  int ok = open_state(xw);
  pthread_mutex_unlock(&xw->hook_mu);
  return ok;
}

static _Thread_local xworker *this_worker; /* for the interrupt hook */

static void *x_open(void *vctx, int index) {
  xworker *xw = cray__calloc(1, sizeof *xw);
  if (!xw) return NULL;
  xw->ctx = vctx;
  xw->index = index;
  xw->limit = xw->ctx->rt->opts.worker_memory;
  xw->share = xw->ctx->rt->opts.task_memory ? xw->ctx->rt->opts.task_memory : xw->limit / 2;
  pthread_mutex_init(&xw->hook_mu, NULL);
  char name[16];
  snprintf(name, sizeof name, "w%d", index);
  cray__log_thread(name);
  if (have_state(xw)) cray__log(CRAY__LOG_DEBUG, "worker started");
  else cray__log(CRAY__LOG_ERROR, "worker started without a Lua state: no memory to make one");
  this_worker = xw;
  return xw;
}

/* The state leaves xw under hook_mu, so no interrupt sets a hook in it once it closes; it
 * closes outside the lock, whose finalizers take the module's lock (which an interrupter
 * holds while it takes hook_mu). */
static void close_state(xworker *xw) {
  pthread_mutex_lock(&xw->hook_mu);
  lua_State *L = xw->L;
  xw->L = NULL;
  pthread_mutex_unlock(&xw->hook_mu);
  lua_close(L);
}

static void x_close(void *vctx, void *w) {
  (void)vctx;
  xworker *xw = w;
  if (xw->L) close_state(xw);
  pthread_mutex_destroy(&xw->hook_mu);
  this_worker = NULL;
  cray__log(CRAY__LOG_DEBUG, "worker stopped");
  cray__free(xw);
}

/* ---- errors ---- */

static cray__blob *error_blob(cray__task *t, const char *kind, const char *fmt, const char *arg) {
  return cray__error_blob(kind, t->name, NULL, fmt, arg);
}

/* (error object) -> encodes it; the blob comes back through upvalue-free lightuserdata. */
static int encode_error(lua_State *L) {
  cray__blob **out = lua_touserdata(L, 2);
  cray__lstate *ls = cray__lstate_get(L);
  cray__codec_encode(L, ls, 1, 1, "error");
  *out = cray__codec_store_blob(L, ls, 1, "a task's error");
  return 0;
}

/* (value, traceback, task name) -> error object, via cray.errors.from_raised. */
static int build_error(lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "cray.errors");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "from_raised");
  lua_insert(L, 1);
  lua_pop(L, 1);
  lua_call(L, 3, 1);
  return 1;
}

/* A coroutine that died of an error the VM raised in a Lua function (not through
 * error()) keeps no line for that top frame, and its traceback reads "f.lua: in function
 * 'g'". The message, the string at index err, starts with that frame's "f.lua:12:": its
 * line goes back into the traceback on top. */
static void add_top_line(lua_State *L, lua_State *co, int err) {
  lua_Debug ar;
  if (lua_type(L, err) != LUA_TSTRING || !lua_getstack(co, 0, &ar) || !lua_getinfo(co, "Sl", &ar) ||
      ar.currentline > 0 || strcmp(ar.what, "C") == 0)
    return;
  const char *msg = lua_tostring(L, err), *tb = lua_tostring(L, -1);
  size_t n = strlen(ar.short_src), digits = 0;
  if (strncmp(msg, ar.short_src, n) != 0 || msg[n] != ':') return;
  while (msg[n + 1 + digits] >= '0' && msg[n + 1 + digits] <= '9') digits++;
  lua_pushfstring(L, "\n\t%s: ", ar.short_src);
  const char *at = strstr(tb, lua_tostring(L, -1));
  lua_pop(L, 1);
  if (!digits || msg[n + 1 + digits] != ':' || !at) return;
  size_t head = (size_t)(at - tb) + 2 + n;
  lua_pushlstring(L, tb, head);
  lua_pushlstring(L, msg + n, 1 + digits);
  lua_pushstring(L, tb + head);
  lua_concat(L, 3);
  lua_replace(L, -2);
}

/* Pushes co's traceback without the frames of cray's own chunks (its modules and the
 * trampoline, at the bottom); err is the index in L of what the task raised. */
static void push_traceback(lua_State *L, lua_State *co, int err) {
  luaL_traceback(L, co, NULL, 0);
  add_top_line(L, co, err);
  cray__traceback_clean(L);
}

/* (error object, task) -> whether the task's retry filter says to retry it */
static int run_filter(lua_State *L) {
  cray__task *t = lua_touserdata(L, 2);
  cray__exec_push_stored(L, cray__lstate_get(L), t->retry_filter, LUA_TFUNCTION);
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1);
  lua_pushboolean(L, lua_toboolean(L, -1));
  return 1;
}

/* The error object for what the task raised (on top of its coroutine co), as a blob.
 * A task with a retry filter and retries left asks it (a filter that raises says no). */
static cray__blob *raised_blob(xworker *xw, cray__task *t, lua_State *co) {
  lua_State *L = xw->L;
  lua_xmove(co, L, 1);
  int top = lua_gettop(L) - 1;
  push_traceback(L, co, top + 1);
  lua_pushstring(L, t->name ? t->name : "?");
  lua_pushcfunction(L, build_error);
  lua_insert(L, -4);
  cray__blob *blob = NULL;
  if (lua_pcall(L, 3, 1, 0) == 0) {
    if (t->retry_filter && t->retries < t->max_retries) {
      lua_pushcfunction(L, run_filter);
      lua_pushvalue(L, -2);
      lua_pushlightuserdata(L, t);
      t->retry_exceptions = lua_pcall(L, 2, 1, 0) == 0 && lua_toboolean(L, -1);
      lua_pop(L, 1);
    }
    lua_pushcfunction(L, encode_error);
    lua_insert(L, -2);
    lua_pushlightuserdata(L, &blob);
    if (lua_pcall(L, 2, 0, 0) != 0) {
      /* The raised value itself cannot travel: say what it was instead. */
      const char *why = lua_tostring(L, -1);
      blob = error_blob(t, "task_error", "the task raised an error that cannot be stored: %s",
                        why ? why : "?");
    }
  } else {
    blob = error_blob(t, "task_error", "%s", lua_tostring(L, -1));
  }
  lua_settop(L, top);
  return blob;
}

/* ---- functions ---- */

/* Raises a message without a position: luaL_error's would name the trampoline, a frame of
 * cray's, not the user's code. */
static int refuse(lua_State *L, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  return lua_error(L);
}

void cray__exec_push_stored(lua_State *L, cray__lstate *ls, cray__entry *e, int type) {
  uint8_t key[16];
  cray__id_store(&e->id, key);
  lua_getfield(L, LUA_REGISTRYINDEX, CRAY__REG_STORED);
  lua_pushlstring(L, (const char *)key, 16);
  lua_rawget(L, -2);
  if (!lua_isnil(L, -1)) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  const char *what = type == LUA_TTABLE ? "cray.actor" : "cray.remote";
  const char *thing = type == LUA_TTABLE ? "class (a table)" : "function";
  if (cray__codec_decode_entry(L, ls, e, 1, type == LUA_TTABLE ? "an actor's class" : "a task's function") == 0)
    lua_pushnil(L);
  if (lua_type(L, -1) == LUA_TSTRING) {
    const char *name = lua_tostring(L, -1), *dot = strrchr(name, '.');
    if (!dot || dot == name || !dot[1])
      refuse(L, "%s('%s'): name it as 'module.name'", what, name);
    lua_getglobal(L, "require");
    lua_pushlstring(L, name, (size_t)(dot - name));
    lua_call(L, 1, 1);
    if (!lua_istable(L, -1))
      refuse(L, "%s('%s'): module '%s' is not a table", what, name, lua_tostring(L, -1));
    lua_getfield(L, -1, dot + 1);
    if (lua_type(L, -1) != type)
      refuse(L, "%s('%s'): the module has no %s '%s'", what, name, thing, dot + 1);
    lua_replace(L, -3);
    lua_pop(L, 1);
  }
  if (lua_type(L, -1) != type)
    refuse(L, "%s: expects a %s (got %s)", what, thing, cray__describe(L, -1));
  lua_pushlstring(L, (const char *)key, 16);
  lua_pushvalue(L, -2);
  lua_rawset(L, -4);
  lua_remove(L, -2);
}

static int noop(lua_State *L) {
  (void)L;
  return 0;
}

/* Pushes the class of actor a, kept in a registry slot for the next call of the same
 * class. A class becomes its instances' metatable: its __index is itself unless it has
 * one. */
static void push_class(lua_State *L, xworker *xw, cray__actor *a) {
  if (a->cls == xw->last_cls && cray__id_eq(&a->cls->id, &xw->last_cls_id)) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, xw->cls_slot);
    return;
  }
  cray__exec_push_stored(L, xw->ls, a->cls, LUA_TTABLE);
  lua_getfield(L, -1, "__index");
  if (lua_isnil(L, -1)) {
    lua_pushvalue(L, -2);
    lua_setfield(L, -3, "__index");
  }
  lua_pop(L, 1);
  lua_pushvalue(L, -1);
  lua_rawseti(L, LUA_REGISTRYINDEX, xw->cls_slot);
  xw->last_cls = a->cls;
  xw->last_cls_id = a->cls->id;
}

/* Pushes the method the actor call t runs: init (or a no-op without one, task_function's
 * upvalue 3), or the one it names. */
static void push_method(lua_State *L, xworker *xw, cray__task *t) {
  cray__actor *a = t->actor;
  push_class(L, xw, a);
  lua_getfield(L, -1, t->method);
  if (lua_isnil(L, -1) && t->is_init) {
    lua_pushvalue(L, lua_upvalueindex(3));
  } else if (!lua_isfunction(L, -1)) {
    refuse(L, "actor class '%s' has no method '%s'", a->class_name, t->method);
  }
}

/* task_function() -> the current task's function: the last one again (upvalue 2), or
 * from push_function. */
static int task_function(lua_State *L) {
  xworker *xw = lua_touserdata(L, lua_upvalueindex(1));
  cray__task *t = xw->current;
  if (t->actor) {
    push_method(L, xw, t);
    return 1;
  }
  if (t->fn == xw->last_fn && cray__id_eq(&t->fn->id, &xw->last_fn_id)) {
    lua_pushvalue(L, lua_upvalueindex(2));
    return 1;
  }
  cray__exec_push_stored(L, xw->ls, t->fn, LUA_TFUNCTION);
  lua_pushvalue(L, -1);
  lua_replace(L, lua_upvalueindex(2));
  xw->last_fn = t->fn;
  xw->last_fn_id = t->fn->id;
  return 1;
}

/* An instance handle: the state's generation and the registry reference. */
static void *exec_of(xworker *xw, int ref) {
  return (void *)(uintptr_t)((uint64_t)xw->gen << 32 | (uint32_t)ref);
}

static int exec_current(xworker *xw, const void *exec) {
  return exec && (uint32_t)((uint64_t)(uintptr_t)exec >> 32) == xw->gen;
}

/* ---- instances that move (runtime/actor.c, "moving") ----
 *
 * An instance moves as a value passed to a call does, through the codec, and only when
 * that changes nothing the actor could see: its metatable is its class, and it holds
 * numbers, strings, booleans, ObjectRefs, values of registered classes (handles and
 * methods among them) and plain tables of those, each table met once, whose keys are
 * numbers, strings or booleans. A function (its upvalues are shared with others), a
 * table met twice, any other userdata, cdata or coroutine keeps its actor where it is, as
 * does an instance whose packing passes PACK_MAX bytes. */

#define PACK_MAX (64 * 1024)

/* Whether the value at idx (absolute) can move; `seen` (absolute) holds the plain tables
 * met so far. The instance itself (depth 0) is walked whatever its metatable. */
static int movable(lua_State *L, cray__lstate *ls, int idx, int seen, int depth) {
  switch (lua_type(L, idx)) {
  case LUA_TNIL: case LUA_TNUMBER: case LUA_TSTRING: case LUA_TBOOLEAN: return 1;
  case LUA_TUSERDATA: return cray__objref_test(L, ls, idx) != NULL;
  case LUA_TTABLE: break;
  default: return 0;
  }
  if (depth >= CRAY__CODEC_MAX_DEPTH || !lua_checkstack(L, 4)) return 0;
  if (depth && lua_getmetatable(L, idx)) { /* a registered class's value: the codec checks */
    lua_pop(L, 1);
    return 1;
  }
  lua_pushvalue(L, idx);
  lua_rawget(L, seen);
  int met = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (met) return 0;
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, seen);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int k = lua_type(L, -2);
    if ((k != LUA_TNUMBER && k != LUA_TSTRING && k != LUA_TBOOLEAN) ||
        !movable(L, ls, lua_gettop(L), seen, depth + 1)) {
      lua_pop(L, 2);
      return 0;
    }
    lua_pop(L, 1);
  }
  return 1;
}

/* pack(xw, a, instance) -> the packed instance (a light userdata blob), or nothing when it
 * cannot move. Raises when the codec refuses it. */
static int pack_instance(lua_State *L) {
  xworker *xw = lua_touserdata(L, 1);
  cray__actor *a = lua_touserdata(L, 2);
  if (!lua_getmetatable(L, 3)) return 0;
  push_class(L, xw, a);
  int own_class = lua_rawequal(L, -1, -2);
  lua_settop(L, 3);
  lua_newtable(L); /* 4: the tables met */
  if (!own_class || !movable(L, xw->ls, 3, 4, 0)) return 0;
  lua_newtable(L); /* 5: the instance without its metatable */
  lua_pushnil(L);
  while (lua_next(L, 3)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, 5);
  }
  cray__codec_encode(L, xw->ls, 5, 1, "instance");
  if (cray__codec_len(xw->ls) > PACK_MAX) return 0;
  cray__blob *b = cray__codec_blob(xw->ls, xw->ctx->rt->store, 1, CRAY__BLOB_TRUSTED);
  if (!b) return 0;
  lua_pushlightuserdata(L, b);
  return 1;
}

static cray__blob *x_actor_pack(void *w, cray__actor *a) {
  xworker *xw = w;
  lua_State *L = xw->L;
  if (!L || !exec_current(xw, a->exec)) return NULL;
  int top = lua_gettop(L);
  lua_pushcfunction(L, pack_instance);
  lua_pushlightuserdata(L, xw);
  lua_pushlightuserdata(L, a);
  lua_rawgeti(L, LUA_REGISTRYINDEX, (int)(uint32_t)(uintptr_t)a->exec);
  cray__blob *b = lua_pcall(L, 3, 1, 0) == 0 ? lua_touserdata(L, -1) : NULL;
  lua_settop(L, top);
  if (b) {
    luaL_unref(L, LUA_REGISTRYINDEX, (int)(uint32_t)(uintptr_t)a->exec);
    a->exec = NULL;
  }
  return b;
}

/* Makes the instance packed for this state its own, registered as a->exec. */
static void unpack_instance(lua_State *L, xworker *xw, cray__actor *a) {
  cray__codec_decode(L, xw->ls, a->packed, 1);
  push_class(L, xw, a);
  lua_setmetatable(L, -2);
  a->exec = exec_of(xw, luaL_ref(L, LUA_REGISTRYINDEX));
  cray__blob_release(xw->ctx->rt->store, a->packed);
  a->packed = NULL;
}

/* Pushes the instance of t's actor; init makes it, or the first call of an actor without
 * an init call (runtime/actor.h): a table whose metatable is the class. */
static void push_instance(lua_State *L, xworker *xw, cray__task *t) {
  cray__actor *a = t->actor;
  if (!t->is_init && a->packed) unpack_instance(L, xw, a);
  if (!t->is_init && a->exec) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, (int)(uint32_t)(uintptr_t)a->exec);
    return;
  }
  lua_newtable(L);
  push_class(L, xw, a);
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  a->exec = exec_of(xw, luaL_ref(L, LUA_REGISTRYINDEX));
}

/* task_args() -> the current task's arguments, after its instance for an actor call. */
static int task_args(lua_State *L) {
  xworker *xw = lua_touserdata(L, lua_upvalueindex(1));
  cray__task *t = xw->current;
  int n = 0;
  if (t->actor) push_instance(L, xw, t), n = 1;
  return n + (t->args ? cray__codec_decode_args(L, xw->ls, t->args) : 0);
}

/* ---- results ---- */

/* finish(values...): resolves the current task's returns with the values, then yields
 * to x_run. */
static int finish(lua_State *L) {
  xworker *xw = lua_touserdata(L, lua_upvalueindex(1));
  cray__task *t = xw->current;
  cray__lstate *ls = xw->ls;
  cray__store *s = ls->rt->store;
  int n = lua_gettop(L);
  cray__objref_flush(ls); /* what the task dropped is freed before its result is seen */
  if (xw->interrupted) /* it caught the cancel and returned: it is cancelled all the same */
    return cray__raise(L, "cancelled", "task '%s' was cancelled while it ran",
                       t->name ? t->name : "?");
  if (t->all_values) {
    cray__codec_encode(L, ls, 1, n, "returns");
    cray__blob *b = cray__codec_store_blob(L, ls, (uint32_t)n, "the task's result");
    cray__sched_count_success(t, b->len);
    if (cray__store_resolve(s, t->returns[0], b, 0) != 0) cray__blob_release(s, b);
    xw->finished = 1;
    return lua_yield(L, 0);
  }
  if ((uint32_t)n != t->nreturns && t->nreturns > 0)
    return cray__raise(L, "task_error", "task '%s' returned %d values but num_returns = %u",
                       t->name ? t->name : "?", n, t->nreturns);
  /* A refusal must fail the task whole, with nothing resolved or held: with several
   * returns every value is encoded once to check it (encoding raises) and to reserve room
   * for them all, then again into its blob. */
  if (t->nreturns > 1) {
    size_t room = 0;
    for (uint32_t i = 0; i < t->nreturns; i++) {
      cray__codec_encode(L, ls, 1 + (int)i, 1, "return value");
      room += cray__codec_len(ls);
    }
    cray__codec_reserve(L, ls, room, "the task's result");
  }
  cray__blob *one[1];
  cray__blob **blobs = t->nreturns <= 1 ? one : lua_newuserdata(L, t->nreturns * sizeof *blobs);
  for (uint32_t i = 0; i < t->nreturns; i++) {
    cray__codec_encode(L, ls, 1 + (int)i, 1, "return value");
    if (t->nreturns == 1) {
      blobs[i] = cray__codec_store_blob(L, ls, 1, "the task's result");
      continue;
    }
    blobs[i] = cray__codec_blob(ls, s, 1, CRAY__BLOB_TRUSTED);
    if (!blobs[i]) {
      for (uint32_t k = 0; k < i; k++) cray__blob_release(s, blobs[k]);
      return cray__raise(L, "out_of_memory", "no memory for the task's result");
    }
  }
  size_t bytes = 0;
  for (uint32_t i = 0; i < t->nreturns; i++) bytes += blobs[i]->len;
  cray__sched_count_success(t, bytes);
  for (uint32_t i = 0; i < t->nreturns; i++)
    if (cray__store_resolve(s, t->returns[i], blobs[i], 0) != 0) cray__blob_release(s, blobs[i]);
  xw->finished = 1;
  return lua_yield(L, 0);
}

/* ---- running ---- */

static void unanchor(xworker *xw, cray__task *t) {
  uint64_t exec = (uint64_t)(uintptr_t)t->exec;
  if (exec && (uint32_t)(exec >> 32) == xw->gen && xw->L)
    luaL_unref(xw->L, LUA_REGISTRYINDEX, (int)(uint32_t)exec);
  t->exec = NULL;
}

/* The state ran out of memory: make it anew. Everything suspended in it is lost. */
static void rebuild(xworker *xw, const cray__task *t) {
  char limit[32];
  cray__log(CRAY__LOG_WARN,
            "the worker's Lua state ran out of memory (%s, --worker-memory) in task '%s' and "
            "was rebuilt: that task and the actors and suspended tasks in the state were lost",
            cray__log_size(xw->limit, limit), t->name ? t->name : "?");
  close_state(xw);
  have_state(xw);
}

/* ---- interrupts ---- */

static void cancel_hook(lua_State *L, lua_Debug *ar);

static void set_hook(xworker *xw, lua_Hook hook) {
  pthread_mutex_lock(&xw->hook_mu);
  if (xw->L) lua_sethook(xw->L, hook, hook ? LUA_MASKCOUNT : 0, hook ? HOOK_COUNT : 0);
  pthread_mutex_unlock(&xw->hook_mu);
}

static void x_interrupt(void *w) { set_hook(w, cancel_hook); }

/* Runs on the worker, in whatever its state executes. */
static void cancel_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  xworker *xw = this_worker;
  cray__task *t = xw ? xw->current : NULL;
  /* Seq-cst, as every other reader of the flag: a cancel stores it before it arms us. */
  if (!t || !(atomic_load_explicit(&t->cancelled, memory_order_seq_cst) ||
              cray__sched_stopping(t->sched))) {
    set_hook(xw, NULL); /* armed for a task that has ended since */
    return;
  }
  xw->interrupted = 1;
  cray__raise(L, "cancelled", "task '%s' was cancelled while it ran", t->name ? t->name : "?");
}

/* The error of a task that passed its share of the heap. */
static cray__blob *over_share_blob(xworker *xw, cray__task *t) {
  char why[320];
  snprintf(why, sizeof why,
           "task '%.128s' used more than its share of worker %d's Lua heap (task_memory = "
           "%zu bytes, --task-memory)",
           t->name ? t->name : "?", xw->index, xw->share);
  return error_blob(t, "out_of_memory", "%s", why);
}

static int lost(xworker *xw, cray__task *t) {
  t->exec = NULL;
  t->error = cray__error_blob("out_of_memory", t->name, NULL,
                              "task '%s' was lost: worker %d's Lua state ran out of memory "
                              "(limit %zu bytes, --worker-memory)",
                              t->name ? t->name : "?", xw->index, xw->limit);
  return CRAY__RUN_LOST;
}

/* A coroutine for a new task, from the pool or made (its body the trampoline), anchored
 * in the registry; t->exec names it. */
static lua_State *take_coroutine(xworker *xw, cray__task *t) {
  lua_State *L = xw->L, *co;
  int ref;
  if (xw->nidle) {
    xw->nidle--;
    ref = xw->idle_ref[xw->nidle];
    co = xw->idle_co[xw->nidle];
  } else {
    co = lua_newthread(L);
    ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_rawgeti(L, LUA_REGISTRYINDEX, xw->trampoline);
    lua_xmove(L, co, 1);
  }
  t->exec = exec_of(xw, ref);
  return co;
}

/* t finished in co: co waits in the pool for the next task (or is dropped when the pool
 * is full). */
static void recycle(xworker *xw, cray__task *t, lua_State *co) {
  if (xw->nidle == POOL) {
    unanchor(xw, t);
    return;
  }
  xw->idle_ref[xw->nidle] = (int)(uint32_t)(uintptr_t)t->exec;
  xw->idle_co[xw->nidle] = co;
  xw->nidle++;
  t->exec = NULL;
}

/* t stopped running for good: the sockets it used are free, those it owns close. */
static void io_task_end(cray__task *t) {
  cray__io *io = cray__sched_io(t->sched);
  cray__io_user_end(io, t);
  if (!t->actor) cray__io_owner_end(io, t);
}

/* (value, &blob): encodes a streamed value into a blob */
static int encode_item(lua_State *L) {
  cray__lstate *ls = cray__lstate_get(L);
  cray__codec_encode(L, ls, 1, 1, "a streamed value");
  *(cray__blob **)lua_touserdata(L, 2) = cray__codec_store_blob(L, ls, 1, "a streamed value");
  return 0;
}

/* The streaming task t yielded in co: its first yielded value becomes the stream's next
 * item. Returns 1 to resume it at once; 0 when it stops here: it pauses (a wait armed on
 * the consumer), it was cancelled (armed with no wait: the scheduler fails it), or the
 * value could not be stored (t->error set, status left a yield, which x_run fails). */
static int stream_step(xworker *xw, cray__task *t, lua_State *co) {
  lua_State *L = xw->L;
  lua_settop(co, 1); /* the first value, or nil */
  lua_xmove(co, L, 1);
  cray__blob *blob = NULL;
  lua_pushcfunction(L, encode_item);
  lua_insert(L, -2);
  lua_pushlightuserdata(L, &blob);
  if (lua_pcall(L, 2, 0, 0) != 0) {
    const char *why = lua_tostring(L, -1);
    t->error = error_blob(t, "serialization", "%s", why ? why : "a streamed value cannot be stored");
    lua_pop(L, 1);
    return 0;
  }
  cray__entry *resume = NULL;
  int rc = cray__stream_put(t->stream, blob, &resume);
  if (rc < 0) {
    t->error = error_blob(t, "out_of_memory", "no memory for a streamed value%s", "");
    return 0;
  }
  if (atomic_load_explicit(&t->cancelled, memory_order_acquire) || cray__sched_stopping(t->sched)) {
    if (resume) cray__store_release(xw->ctx->rt->store, resume);
    xw->armed = 1;
    return 0;
  }
  if (rc == 0) return 1;
  if (cray__sched_wait_begin(t->sched, t, &resume, 1, 1, -1) != 0) {
    cray__store_release(xw->ctx->rt->store, resume);
    t->error = error_blob(t, "out_of_memory", "no memory to pause a streaming task%s", "");
    return 0;
  }
  t->stream_wait = resume;
  xw->armed = 1;
  return 0;
}

static int x_run(void *w, cray__task *t) {
  xworker *xw = w;
  if (!have_state(xw)) {
    t->error = error_blob(t, "out_of_memory", "no memory for a worker's Lua state%s", "");
    return CRAY__RUN_RAISED;
  }
  lua_State *co;
  int nargs = 0;
  if (!t->exec) {
    cray__actor *a = t->actor; /* a packed instance is unpacked when the call asks for it */
    if (a && !t->is_init && !a->packed && a->exec && !exec_current(xw, a->exec))
      return lost(xw, t);
    co = take_coroutine(xw, t);
    t->heap = 0;
  } else {
    uint64_t exec = (uint64_t)(uintptr_t)t->exec;
    cray__sched_wait_end(t->sched, t);
    if ((uint32_t)(exec >> 32) != xw->gen) return lost(xw, t);
    lua_rawgeti(xw->L, LUA_REGISTRYINDEX, (int)(uint32_t)exec);
    co = lua_tothread(xw->L, -1);
    lua_pop(xw->L, 1);
    if (t->stream_wait) { /* a streaming task's pause: its coroutine.yield returns nothing */
      cray__store_release(xw->ctx->rt->store, t->stream_wait);
      t->stream_wait = NULL;
    } else {
      lua_pushlightuserdata(co, CRAY__RETRY);
      nargs = 1;
    }
  }
  xw->current = t;
  xw->current_co = co;
  cray__log_task(t);
  xw->armed = 0;
  xw->finished = 0;
  xw->over_share = 0;
  xw->interrupted = 0;
  int status = lua_resume(co, nargs);
  while (status == LUA_YIELD && t->stream && !xw->finished && !xw->armed && !xw->oom &&
         stream_step(xw, t, co))
    status = lua_resume(co, 0);
  xw->current = NULL;
  xw->current_co = NULL;
  cray__log_task(NULL);
  cray__objref_flush(xw->ls); /* what the task's collections dropped, before it is done */
  if (xw->interrupted) set_hook(xw, NULL);
  if (!(status == LUA_YIELD && xw->armed && !xw->finished)) io_task_end(t);
  if (xw->oom) {
    unanchor(xw, t);
    rebuild(xw, t);
    return lost(xw, t);
  }
  if (status == LUA_YIELD && xw->finished) {
    if (t->stream) cray__stream_end(t->stream);
    recycle(xw, t, co);
    return CRAY__RUN_DONE;
  }
  if (status == LUA_YIELD && xw->armed) return CRAY__RUN_SUSPENDED;
  if (t->stream) cray__stream_end(t->stream);
  if (status == LUA_ERRMEM && xw->over_share)
    t->error = over_share_blob(xw, t);
  else if (status != LUA_YIELD && xw->interrupted)
    t->error = error_blob(t, "cancelled",
                          cray__sched_stopping(t->sched)
                              ? "task '%s' was cancelled while it ran: the runtime shut down"
                              : "task '%s' was cancelled while it ran",
                          t->name ? t->name : "?");
  else if (status != LUA_YIELD)
    t->error = raised_blob(xw, t, co);
  else if (!t->error) /* stream_step sets it when a streamed value cannot be stored */
    t->error = error_blob(t, "task_error",
                          "task '%s' called coroutine.yield outside a coroutine of its own; "
                          "use cray.sleep(0) to let other tasks run",
                          t->name ? t->name : "?");
  unanchor(xw, t);
  if (xw->oom) return rebuild(xw, t), lost(xw, t);
  /* The offender's garbage goes at once, before it crowds the tasks that go on. */
  if (xw->over_share) {
    lua_gc(xw->L, LUA_GCCOLLECT, 0);
    cray__objref_flush(xw->ls);
  }
  return CRAY__RUN_RAISED;
}

static void x_drop(void *w, cray__task *t) {
  io_task_end(t);
  unanchor(w, t);
}

static void x_actor_drop(void *w, cray__actor *a) {
  xworker *xw = w;
  cray__sched *s = atomic_load_explicit(&xw->ctx->rt->sched, memory_order_acquire);
  if (s) cray__io_owner_end(cray__sched_io(s), a); /* its sockets close with it */
  if (xw->L && exec_current(xw, a->exec))
    luaL_unref(xw->L, LUA_REGISTRYINDEX, (int)(uint32_t)(uintptr_t)a->exec);
  a->exec = NULL;
}

static int x_actor_lost(void *w, cray__actor *a) {
  return a->exec && !exec_current(w, a->exec);
}

static const cray__executor lua_executor = {x_open,       x_close,      x_run,
                                            x_drop,       x_actor_drop, x_actor_lost,
                                            x_actor_pack, x_interrupt};

/* ---- starting ---- */

/* The package.path and cpath of the state that starts the workers (NULL: none). */
typedef struct ctx_args {
  const char *path, *cpath;
} ctx_args;

/* A copy of the option when set, else of the starting state's path, else NULL; 0 when
 * memory is short. */
static int pick_path(char **out, const char *option, const char *state) {
  const char *p = option ? option : state;
  *out = p ? cray__strdup(p) : NULL;
  return !p || *out;
}

static void *make_ctx(cray_runtime *rt, void *arg) {
  ctx_args *a = arg;
  exec_ctx *c = cray__calloc(1, sizeof *c);
  if (!c) return NULL;
  c->rt = rt;
  if (!pick_path(&c->path, rt->opts.lua_path, a->path) ||
      !pick_path(&c->cpath, rt->opts.lua_cpath, a->cpath)) {
    cray__free(c->path), cray__free(c->cpath), cray__free(c);
    return NULL;
  }
  return c;
}

static void free_ctx(void *p) {
  exec_ctx *c = p;
  cray__free(c->path);
  cray__free(c->cpath);
  cray__free(c);
}

cray__sched *cray__exec_sched(lua_State *L, cray__lstate *ls) {
  cray__sched *s = atomic_load_explicit(&ls->rt->sched, memory_order_acquire);
  if (s) return s;
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  lua_getfield(L, -2, "cpath");
  ctx_args a = {lua_tostring(L, -2), lua_tostring(L, -1)};
  if (!a.path) a.path = "";
  if (!a.cpath) a.cpath = "";
  s = cray__runtime_sched(ls->rt, &lua_executor, make_ctx, &a, free_ctx);
  lua_pop(L, 3);
  if (!s) cray__raise(L, "runtime", "cray could not start its worker threads");
  return s;
}

cray__sched *cray__exec_sched_c(cray_runtime *rt) {
  cray__sched *s = atomic_load_explicit(&rt->sched, memory_order_acquire);
  if (s) return s;
  ctx_args a = {NULL, NULL};
  return cray__runtime_sched(rt, &lua_executor, make_ctx, &a, free_ctx);
}

cray__task *cray__exec_current(cray__lstate *ls) {
  xworker *xw = ls->worker;
  return xw ? xw->current : NULL;
}

/* ---- waiting inside a task ---- */

int cray__exec_can_wait(lua_State *L, cray__lstate *ls, int yieldable, const char *fn) {
  xworker *xw = ls->worker;
  if (!xw) return 0;
  if (!xw->current || L != xw->current_co)
    cray__raise(L, "invalid_argument",
                "%s cannot wait inside a coroutine that the task made itself; call it from "
                "the task's own code",
                fn);
  if (!yieldable)
    cray__raise(L, "invalid_argument",
                "%s cannot wait here: it was called through a C function that cannot yield "
                "(such as a table.sort comparator or a metamethod called from C); wait for "
                "the value before that call",
                fn);
  return 1;
}

int cray__exec_arm(lua_State *L, cray__lstate *ls, cray__entry *const *entries, size_t n,
                   size_t want, double deadline, int yieldable, const char *fn) {
  if (!cray__exec_can_wait(L, ls, yieldable, fn)) return 0;
  xworker *xw = ls->worker;
  cray__task *t = xw->current;
  /* seq_cst: as the scheduler's checks against cray__sched_cancel (sched.c after_run) */
  if (atomic_load_explicit(&t->cancelled, memory_order_seq_cst) ||
      cray__sched_stopping(t->sched)) {
    xw->armed = 1; /* the scheduler fails it on the way out */
    return 1;
  }
  double timeout = -1;
  if (deadline >= 0) {
    timeout = deadline - cray__now();
    if (timeout <= 0) return 0; /* the caller's own check raises the timeout */
  }
  if (cray__sched_wait_begin(t->sched, t, entries, n, want, timeout) != 0)
    cray__raise(L, "out_of_memory", "%s: no memory to wait", fn);
  if (CRAY__TRACING()) cray__trace_wait(t, fn);
  xw->armed = 1;
  return 1;
}
