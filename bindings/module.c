/*
 * module.c: luaopen_cray and the C half of the `cray` module.
 *
 * The C functions here take Lua values to and from the store: put, get, wait, stats, and
 * opening and closing the runtime. lua/cray.lua wraps them into the public module (option
 * checking, error objects, sugar). Each C function gets its state's cray__lstate as
 * upvalue 1, so the fast paths do no registry lookups.
 *
 * The process runtime (g_rt) is shared by every state that opened the module without an
 * embedder's runtime; g_mu guards opening and closing it.
 */
#include "module.h"

#include <lauxlib.h>
#include <lualib.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../runtime/alloc.h"
#include "../runtime/cluster.h"
#include "../runtime/log.h"
#include "../runtime/progress.h"
#include "../runtime/trace.h"
#include "../runtime/wait.h"
#include "actor.h"
#include "lio.h"
#include "codec.h"
#include "lua_modules.h"
#include "lstate.h"
#include "objref.h"
#include "objects.h"
#include "timeline.h"
#include "stats.h"
#include "stream.h"
#include "task.h"

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static cray_runtime *g_rt;

/* ---- the runtime a state uses ---- */

static void bind_rt(cray__lstate *ls, cray_runtime *rt) {
  if (ls->rt) cray__objref_flush(ls);
  ls->rt = rt;
  ls->epoch = rt ? rt->ids.epoch : 0;
}

/* Opens the process runtime with opts, or fails when it is open already. */
static int open_process_rt(cray__lstate *ls, const cray_options *opts) {
  pthread_mutex_lock(&g_mu);
  int rc = g_rt ? CRAY_EINVAL : cray_open(&g_rt, opts);
  if (rc == 0) bind_rt(ls, g_rt), ls->owns_rt = 1;
  pthread_mutex_unlock(&g_mu);
  return rc;
}

cray_runtime *cray__module_rt(lua_State *L, cray__lstate *ls) {
  if (ls->rt) {
    cray__objref_flush(ls);
    return ls->rt;
  }
  pthread_mutex_lock(&g_mu);
  int rc = 0;
  if (!g_rt && (rc = cray_open(&g_rt, NULL)) == 0) ls->owns_rt = 1;
  if (rc == 0) bind_rt(ls, g_rt);
  pthread_mutex_unlock(&g_mu);
  if (rc) cray__raise(L, "runtime", "cray could not start: %s", cray__open_error(rc));
  return ls->rt;
}

/* The state's context, with the releases its finalizers queued done: what the call then
 * reads of the store counts them. */
static cray__lstate *self(lua_State *L) {
  cray__lstate *ls = lua_touserdata(L, lua_upvalueindex(1));
  cray__objref_flush(ls);
  return ls;
}

/* ---- options tables ---- */

/* Checks that every key of the options table at idx is one of `names` (NULL-ended). */
static void check_option_names(lua_State *L, int idx, const char *fn, const char *const *names) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    int known = 0;
    for (int i = 0; k && names[i]; i++) known |= strcmp(k, names[i]) == 0;
    if (!known) {
      const char *name = k ? lua_pushfstring(L, "'%s'", k) : cray__describe(L, -1);
      luaL_Buffer b;
      luaL_buffinit(L, &b);
      for (int i = 0; names[i]; i++) {
        if (i) luaL_addstring(&b, ", ");
        luaL_addstring(&b, names[i]);
      }
      luaL_pushresult(&b);
      cray__raise(L, "invalid_argument", "%s: unknown option %s (known: %s)", fn, name,
                  lua_tostring(L, -1));
    }
  }
}

/* Reads opts.timeout at table idx (0 = no table): seconds, or -1 for none. */
static double opt_timeout(lua_State *L, int idx, const char *fn) {
  if (!idx) return -1;
  lua_getfield(L, idx, "timeout");
  double t = -1;
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) >= 0))
      cray__raise(L, "invalid_argument",
                  "%s: option 'timeout' must be a number of seconds >= 0 (got %s)", fn,
                  cray__describe(L, -1));
    t = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  return t;
}

static int opts_arg(lua_State *L, int idx, const char *fn, const char *const *names) {
  if (lua_isnoneornil(L, idx)) return 0;
  if (!lua_istable(L, idx))
    cray__raise(L, "invalid_argument", "%s: options must be a table (got %s)", fn,
                cray__describe(L, idx));
  check_option_names(L, idx, fn, names);
  return idx;
}

/* ---- put ---- */

/* ObjectRefs are small userdata holding big blobs the Lua GC cannot see. Each put adds
 * its blob to ls->gc_debt; once that passes a megabyte the next put pays it as a GC step
 * of that size (a whole collection when the debt outgrows the Lua heap), so dropped refs
 * are collected at the pace their bytes call for. Paid before encoding, so finalizers
 * that run meanwhile find the scratch space free. */
#define GC_DEBT_MIN ((size_t)1 << 20)

static void pay_gc_debt(lua_State *L, cray__lstate *ls) {
  size_t kb = ls->gc_debt >> 10;
  ls->gc_debt = 0;
  if (kb >= (size_t)lua_gc(L, LUA_GCCOUNT, 0)) lua_gc(L, LUA_GCCOLLECT, 0);
  else lua_gc(L, LUA_GCSTEP, (int)kb);
}

static int l_put(lua_State *L) {
  cray__lstate *ls = self(L);
  int n = lua_gettop(L);
  if (n != 1)
    cray__raise(L, "invalid_argument", "cray.put: takes exactly one value (got %d)", n);
  cray_runtime *rt = cray__module_rt(L, ls);
  if (ls->gc_debt >= GC_DEBT_MIN) pay_gc_debt(L, ls);
  cray__codec_encode(L, ls, 1, 1, "value");
  size_t len = cray__codec_len(ls);
  cray__entry *e;
  int stored_inline = len <= CRAY__INLINE_MAX && !ls->nrefs && !ls->spliced;
  if (stored_inline) { /* inside its entry */
    cray__codec_reserve(L, ls, len, "cray.put");
    e = cray__store_insert_inline(rt->store, cray__id_new(&rt->ids), ls->scratch.data, len, 1,
                                  CRAY__BLOB_TRUSTED);
  } else {
    cray__blob *b = cray__codec_store_blob(L, ls, 1, "cray.put");
    if (!(e = cray__store_insert(rt->store, cray__id_new(&rt->ids), b)))
      cray__blob_release(rt->store, b);
  }
  if (!e) cray__raise(L, "out_of_memory", "cray.put: no memory for a %zu-byte object", len);
  ls->gc_debt += len + sizeof *e + sizeof(cray__blob);
  cray__objects_note_put(L, rt, e, len);
  if (stored_inline) cray__objref_push_small(L, ls, e);
  else cray__objref_push(L, ls, e);
  return 1;
}

/* ref(hex) -> an ObjectRef to the object whose id the 32 hex digits give, holding a
 * reference of its own (the way ids come back from C, a log or another program). */
static int l_ref(lua_State *L) {
  cray__lstate *ls = self(L);
  int is_string = lua_type(L, 1) == LUA_TSTRING;
  size_t len = 0;
  const char *hex = is_string ? lua_tolstring(L, 1, &len) : NULL;
  cray_id id;
  if (!is_string || strlen(hex) != len || cray_id_parse(hex, &id) != 0)
    cray__raise(L, "invalid_argument",
                "cray.ref: expects an id as 32 hex digits, as ref:hex() gives (got %s)",
                cray__describe(L, 1));
  cray_runtime *rt = cray__module_rt(L, ls);
  cray__entry *e = cray__store_lookup(rt->store, &id);
  if (!e)
    cray__raise(L, "object_lost", "cray.ref: no object has id %s (freed, or never made here)",
                hex);
  cray__objref_push(L, ls, e);
  return 1;
}

/* ---- get and wait ---- */

/* Refuses what fn was given at idx in place of `want`, saying what it is; the values most
 * often passed by mistake get a hint. */
static void refuse_refs(lua_State *L, int idx, const char *fn, const char *want) {
  static const char *const hints[][2] = {
      {"a remote function", "; call f.remote(...) and pass the refs it returns"},
      {"an actor handle", "; call a method, h.method.remote(...), and pass the ref it returns"},
      {"an actor method", "; call it, h.method.remote(...), and pass the ref it returns"},
      {"an ObjectRef", "; pass {ref}"},
      {NULL, NULL},
  };
  const char *what = cray__describe(L, idx), *hint = "";
  for (int i = 0; hints[i][0]; i++)
    if (strcmp(what, hints[i][0]) == 0) hint = hints[i][1];
  cray__raise(L, "invalid_argument", "%s: expects %s (got %s%s)", fn, want, what, hint);
}

/* The entries of the refs in the array at idx, in a userdata scratch left on the stack (so
 * an error frees it). Raises unless the value is a plain table whose keys are 1..#t, each
 * holding an ObjectRef. */
static cray__entry **collect_refs(lua_State *L, cray__lstate *ls, int idx, const char *fn,
                                  const char *want, size_t *n) {
  if (!lua_istable(L, idx) || strcmp(cray__describe(L, idx), "a table") != 0)
    refuse_refs(L, idx, fn, want);
  lua_pop(L, 1);
  size_t len = lua_objlen(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    lua_Number k = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
    if (!(k >= 1 && k <= (lua_Number)len && k == floor(k)))
      cray__raise(L, "invalid_argument", "%s: expects %s (got a table with key %s)", fn, want,
                  cray__describe(L, -1));
  }
  cray__entry **v = lua_newuserdata(L, (len ? len : 1) * sizeof *v);
  for (size_t i = 0; i < len; i++) {
    lua_rawgeti(L, idx, (int)i + 1);
    if (!(v[i] = cray__objref_test(L, ls, -1)))
      cray__raise(L, "invalid_argument", "%s: refs[%zu] is not an ObjectRef (got %s)", fn,
                  i + 1, cray__describe(L, -1));
    lua_pop(L, 1);
  }
  *n = len;
  return v;
}

/* How long a thread may still wait for a deadline (< 0: none): seconds, at least 0. */
static double time_left(double deadline) {
  if (deadline < 0) return -1;
  double left = deadline - cray__now();
  return left > 0 ? left : 0;
}

/* Blocks the thread until `want` of entries[0..n) resolve or `left` seconds pass (< 0:
 * no limit); returns how many resolved. Raises "deadlock" when nothing anywhere can make
 * progress first. */
static int block(lua_State *L, cray__lstate *ls, cray__entry **v, size_t n, size_t want,
                 double left, unsigned char *ready, const char *fn) {
  cray__sched *s = atomic_load_explicit(&ls->rt->sched, memory_order_acquire);
  char why[2048];
  int got = s ? cray__sched_wait(s, v, n, want, left, ready, why, sizeof why)
              : cray__wait_entries(ls->rt->store, v, n, want, left, ready);
  if (got == CRAY_EDEADLOCK) cray__raise(L, "deadlock", "%s: %s", fn, why);
  if (got < 0) cray__raise(L, "out_of_memory", "%s: %s", fn, cray_strerror(got));
  return got;
}

/* Blocks the thread until `want` of entries[0..n) resolve; raises "timeout" at the
 * deadline. `timeout` is the option as given, for the message. */
static void wait_or_raise(lua_State *L, cray__lstate *ls, cray__entry **v, size_t n, size_t want,
                          double deadline, double timeout, unsigned char *ready, const char *fn) {
  uint64_t t0 = CRAY__TRACING() ? cray__trace_stamp() : 0;
  int got = block(L, ls, v, n, want, time_left(deadline), ready, fn);
  if (t0 > 0) cray__trace_block(t0, fn);
  if ((size_t)got >= want) return;
  size_t first = 0;
  while (ready[first]) first++;
  char hex[33];
  cray_id_format(&v[first]->id, hex);
  cray__raise(L, "timeout", "%s: timed out after %g s; %zu of %zu objects not ready (first: %s)",
              fn, timeout, n - (size_t)got, n, hex);
}

/* Raises the error object stored in a failed entry, its `waited_at` set to the user's line
 * that waited for it (this copy's own: each get decodes the error anew). */
static int raise_stored(lua_State *L, cray__lstate *ls, cray__entry *e, const char *fn) {
  cray__codec_decode_entry(L, ls, e, 1, fn);
  lua_Debug ar;
  int level = cray__user_level(L, 1);
  if (level && lua_istable(L, -1) && lua_getstack(L, level, &ar) && lua_getinfo(L, "Sl", &ar)) {
    lua_pushfstring(L, "%s:%d", ar.short_src, ar.currentline);
    lua_setfield(L, -2, "waited_at");
  }
  return lua_error(L);
}

/* Arguments 3 and 4 of get and wait, which lua/cray.lua passes inside tasks: the deadline
 * fixed at the first call (so a resumed call keeps it), and coroutine.isyieldable(). */
static double deadline_arg(lua_State *L, double timeout) {
  if (lua_type(L, 3) == LUA_TNUMBER) return lua_tonumber(L, 3);
  return timeout < 0 ? -1 : cray__now() + timeout;
}

static const char *const get_options[] = {"timeout", NULL};

/* Waits for e, pending, until the deadline of arguments 3 and 4: returns 1 when L is a
 * task's coroutine and the caller must return lua_yield(L, 0) (then call again on
 * CRAY__RETRY), 0 once e is resolved; raises "timeout". */
static int await_one(lua_State *L, cray__lstate *ls, cray__entry *e, double timeout,
                     const char *fn) {
  double deadline = deadline_arg(L, timeout);
  if (cray__lstate_wait(L, ls, &e, 1, 1, deadline, lua_toboolean(L, 4), fn)) return 1;
  unsigned char ready;
  wait_or_raise(L, ls, &e, 1, 1, deadline, timeout, &ready, fn);
  return 0;
}

/* get(ref | refs [, opts [, deadline, yieldable]]): the values, or (in a task, after a
 * wait) CRAY__RETRY, on which lua/cray.lua calls again. */
static int l_get(lua_State *L) {
  cray__lstate *ls = self(L);
  int opts = opts_arg(L, 2, "cray.get", get_options);
  double timeout = opt_timeout(L, opts, "cray.get");
  cray__entry *e = cray__objref_test(L, ls, 1);
  if (e) {
    if (cray__entry_state(e) == CRAY__PENDING) {
      if (await_one(L, ls, e, timeout, "cray.get")) return lua_yield(L, 0);
    }
    if (cray__entry_state(e) == CRAY__FAILED) return raise_stored(L, ls, e, "cray.get");
    return cray__codec_decode_entry(L, ls, e, -1, "cray.get");
  }
  size_t n;
  cray__entry **v =
      collect_refs(L, ls, 1, "cray.get", "an ObjectRef or an array of ObjectRefs", &n);
  if (n) {
    unsigned char *ready = lua_newuserdata(L, n);
    double deadline = deadline_arg(L, timeout);
    size_t have = 0;
    for (size_t i = 0; i < n; i++) have += cray__entry_state(v[i]) != CRAY__PENDING;
    if (have < n) {
      size_t k = 0; /* wait for the pending ones only (fewer by now, perhaps none) */
      cray__entry **pending = lua_newuserdata(L, (n - have) * sizeof *pending);
      for (size_t i = 0; i < n; i++)
        if (cray__entry_state(v[i]) == CRAY__PENDING) pending[k++] = v[i];
      if (k && cray__lstate_wait(L, ls, pending, k, k, deadline, lua_toboolean(L, 4), "cray.get"))
        return lua_yield(L, 0);
      wait_or_raise(L, ls, v, n, n, deadline, timeout, ready, "cray.get");
    }
  }
  for (size_t i = 0; i < n; i++)
    if (cray__entry_state(v[i]) == CRAY__FAILED) return raise_stored(L, ls, v[i], "cray.get");
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    if (cray__codec_decode_entry(L, ls, v[i], 1, "cray.get") == 0) lua_pushnil(L);
    lua_rawseti(L, -2, (int)i + 1);
  }
  return 1;
}

/* The finalizer of get_buffer's pointers: upvalues are the blob and its store. */
static int buffer_gc(lua_State *L) {
  cray__blob *b = lua_touserdata(L, lua_upvalueindex(1));
  cray__blob_release((b->flags & CRAY__BLOB_ORPHAN) ? NULL : lua_touserdata(L, lua_upvalueindex(2)),
                     b);
  return 0;
}

static const char *const mp_kinds[] = {"nil", "boolean", "number", "number", "number",
                                       "string", "string", "table", "table", "extension"};

/* get_buffer(ref [, opts [, deadline, yieldable]]) -> const char * cdata, length: the bytes
 * of the ref's first value, a string or an FFI array, in place; or CRAY__RETRY as get. The
 * pointer holds the blob until collected. */
static int l_get_buffer(lua_State *L) {
  cray__lstate *ls = self(L);
  int opts = opts_arg(L, 2, "cray.get_buffer", get_options);
  double timeout = opt_timeout(L, opts, "cray.get_buffer");
  cray__entry *e = cray__objref_test(L, ls, 1);
  if (!e)
    refuse_refs(L, 1, "cray.get_buffer", "an ObjectRef");
  if (cray__entry_state(e) == CRAY__PENDING && await_one(L, ls, e, timeout, "cray.get_buffer"))
    return lua_yield(L, 0);
  if (cray__entry_state(e) == CRAY__FAILED) return raise_stored(L, ls, e, "cray.get_buffer");
  lua_settop(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, CRAY__REG_FFI);
  lua_getfield(L, -1, "new_buffer");
  cray__blob *b = cray__codec_pin(L, ls, e, "cray.get_buffer");
  cray__mp_reader r = {b->data, b->data + b->len};
  cray__mp_item it;
  const uint8_t *p = NULL;
  size_t n = 0;
  int ok = cray__mp_next(&r, &it) == 0;
  if (ok && (it.type == CRAY__MP_STR || it.type == CRAY__MP_BIN)) {
    p = it.p, n = it.n;
  } else if (ok && it.type == CRAY__MP_EXT && it.ext == CRAY__EXT_FFI_ARRAY && it.n >= 1 &&
             1u + (it.p[0] >> 4) <= it.n) {
    p = it.p + 1 + (it.p[0] >> 4), n = it.n - 1 - (it.p[0] >> 4);
  }
  if (!p) {
    cray__store_unpin(e);
    cray__raise(L, "invalid_argument",
                "cray.get_buffer: the object holds a %s, not a string or an FFI array",
                !ok ? "malformed value" : it.type == CRAY__MP_EXT ? "cray extension value"
                                                                  : mp_kinds[it.type]);
  }
  cray__blob_retain(b);
  cray__store_unpin(e);
  lua_pushlightuserdata(L, (void *)p);
  lua_pushlightuserdata(L, b);
  lua_pushlightuserdata(L, ls->rt->store);
  lua_pushcclosure(L, buffer_gc, 2);
  if (lua_pcall(L, 2, 1, 0) != 0) {
    cray__blob_release(ls->rt->store, b);
    return lua_error(L);
  }
  lua_pushnumber(L, (lua_Number)n);
  return 2;
}

static const char *const wait_options[] = {"num_returns", "timeout", NULL};

/* wait(refs [, opts [, deadline, yieldable]]): ready, pending; or CRAY__RETRY as get. */
static int l_wait(lua_State *L) {
  cray__lstate *ls = self(L);
  int opts = opts_arg(L, 2, "cray.wait", wait_options);
  size_t n;
  cray__entry **v = collect_refs(L, ls, 1, "cray.wait", "an array of ObjectRefs", &n);
  size_t want = n ? 1 : 0;
  if (opts) {
    lua_getfield(L, opts, "num_returns");
    if (!lua_isnil(L, -1)) {
      lua_Number k = lua_tonumber(L, -1);
      if (lua_type(L, -1) != LUA_TNUMBER || k != floor(k) || !(k >= 0) || k > (lua_Number)n)
        cray__raise(L, "invalid_argument",
                    "cray.wait: option 'num_returns' must be a whole number from 0 to #refs "
                    "(%zu) (got %s)", n, cray__describe(L, -1));
      want = (size_t)k;
    }
    lua_pop(L, 1);
  }
  double deadline = deadline_arg(L, opt_timeout(L, opts, "cray.wait"));
  unsigned char *ready = lua_newuserdata(L, n ? n : 1);
  size_t have = 0;
  for (size_t i = 0; i < n; i++) have += ready[i] = cray__entry_state(v[i]) != CRAY__PENDING;
  if (have < want && time_left(deadline) == 0)
    for (size_t i = 0; i < n; i++)
      if (!ready[i]) cray__store_want(ls->rt->store, v[i]); /* another rank's: asked for now */
  if (have < want && time_left(deadline) != 0) {
    size_t k = 0;
    cray__entry **pending = lua_newuserdata(L, (n - have) * sizeof *pending);
    for (size_t i = 0; i < n; i++)
      if (!ready[i]) pending[k++] = v[i];
    if (cray__lstate_wait(L, ls, pending, k, want - have, deadline, lua_toboolean(L, 4),
                       "cray.wait"))
      return lua_yield(L, 0);
    block(L, ls, v, n, want, time_left(deadline), ready, "cray.wait");
  }
  lua_createtable(L, (int)want, 0);
  lua_createtable(L, (int)(n - want), 0);
  int nr = 0, np = 0;
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, 1, (int)i + 1);
    int to_ready = ready[i] && (size_t)nr < want;
    lua_rawseti(L, to_ready ? -3 : -2, to_ready ? ++nr : ++np);
  }
  return 2;
}

/* ---- stats ---- */

static void set_int(lua_State *L, const char *k, uint64_t v) {
  lua_pushnumber(L, (lua_Number)v);
  lua_setfield(L, -2, k);
}

/* Sets tasks, actors and store on the table on top from counts v (cluster.h). */
static void push_counts(lua_State *L, const uint64_t *v) {
  static const char *const tasks[] = {"submitted", "running", "finished", "failed"};
  static const char *const store[] = {"objects",         "bytes",         "budget",
                                      "spilled_objects", "spilled_bytes", "restored_objects",
                                      "puts",            "frees",         "peak_bytes"};
  lua_createtable(L, 0, 4);
  for (int i = 0; i < 4; i++) set_int(L, tasks[i], v[CRAY__REPORT_SUBMITTED + i]);
  lua_setfield(L, -2, "tasks");
  lua_getfield(L, -1, "actors");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 4);
  }
  set_int(L, "alive", v[CRAY__REPORT_ACTORS]);
  lua_setfield(L, -2, "actors");
  lua_createtable(L, 0, 9);
  for (int i = 0; i < 9; i++) set_int(L, store[i], v[CRAY__REPORT_OBJECTS + i]);
  lua_setfield(L, -2, "store");
}

/* Under a cluster: the table on top gets every rank's sums (workers, tasks, actors.alive,
 * store) and `nodes`, one entry per rank with its own. */
static void push_cluster_stats(lua_State *L, cray__cluster *c) {
  int size = cray__cluster_size(c);
  cray__cluster_report *reps = lua_newuserdata(L, (size_t)size * sizeof *reps);
  if (cray__cluster_reports(c, reps) != 0)
    cray__raise(L, "invalid_argument", "cray.stats: the runtime is closing");
  uint64_t sum[CRAY__REPORT_N] = {0};
  uint64_t workers = 0;
  lua_createtable(L, size, 0);
  for (int k = 0; k < size; k++) {
    const cray__cluster_node *n = cray__cluster_node_of(c, k);
    for (int i = 0; i < CRAY__REPORT_N; i++) sum[i] += reps[k].v[i];
    workers += (uint64_t)n->workers;
    lua_createtable(L, 0, 6);
    set_int(L, "node", (uint64_t)k);
    set_int(L, "workers", (uint64_t)n->workers);
    lua_pushstring(L, n->host);
    lua_setfield(L, -2, "host");
    push_counts(L, reps[k].v);
    lua_rawseti(L, -2, k + 1);
  }
  cray__cluster_reports_free(c, reps);
  lua_setfield(L, -3, "nodes");
  lua_pop(L, 1);
  set_int(L, "workers", workers);
  push_counts(L, sum);
}

static int l_stats(lua_State *L) {
  cray_runtime *rt = cray__module_rt(L, self(L));
  lua_createtable(L, 0, 3);
  set_int(L, "workers", (uint64_t)rt->opts.workers);
  /* acquire: pairs with the release that publishes it (cray__runtime_sched) */
  cray__sched *sched = atomic_load_explicit(&rt->sched, memory_order_acquire);
  uint64_t v[CRAY__REPORT_N];
  cray__cluster_counts(rt, sched, v);
  push_counts(L, v);
  cray__stats_push(L, sched);
  if (rt->cluster) push_cluster_stats(L, rt->cluster);
  return 1;
}

/* _progress(on): starts (when stderr is a terminal) or stops the runtime's progress line. */
static int l_progress(lua_State *L) {
  cray__lstate *ls = self(L);
  if (!lua_toboolean(L, 1)) {
    if (ls->rt) cray__progress_stop(ls->rt); /* no runtime, no line: none is opened */
    return 0;
  }
  cray_runtime *rt = cray__module_rt(L, ls);
  if (cray__progress_start(rt, 2) < 0) cray__raise(L, "out_of_memory", "no memory for the progress line");
  return 0;
}

/* node() -> workers, {resource = units}, {resource = units not held now}, host name */
static int l_node(lua_State *L) {
  cray__lstate *ls = self(L);
  cray_runtime *rt = cray__module_rt(L, ls);
  const cray_options *o = &rt->opts;
  double *avail = lua_newuserdata(L, (size_t)(o->nresources + 1) * sizeof *avail);
  /* acquire: pairs with the release that publishes it (cray__runtime_sched) */
  cray__sched *s = atomic_load_explicit(&rt->sched, memory_order_acquire);
  if (s) cray__sched_resources_free(s, avail);
  else /* no scheduler yet: nothing is held */
    for (int i = 0; i < o->nresources; i++) avail[i] = o->resource_counts[i];
  lua_pushinteger(L, o->workers);
  for (int pass = 0; pass < 2; pass++) {
    lua_createtable(L, 0, o->nresources);
    for (int i = 0; i < o->nresources; i++) {
      lua_pushnumber(L, pass ? avail[i] : o->resource_counts[i]);
      lua_setfield(L, -2, o->resource_names[i]);
    }
  }
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  lua_pushstring(L, host);
  return 4;
}

/* cluster(nodes) -> this rank, and when nodes is true the job's nodes ({node, workers,
 * resources, host, alive}); nothing in one process */
static int l_cluster(lua_State *L) {
  cray__cluster *c = cray__module_rt(L, self(L))->cluster;
  if (!c) return 0;
  int size = cray__cluster_size(c);
  lua_pushinteger(L, cray__cluster_rank(c));
  if (!lua_toboolean(L, 1)) return 1;
  lua_createtable(L, size, 0);
  for (int k = 0; k < size; k++) {
    const cray__cluster_node *n = cray__cluster_node_of(c, k);
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, k);
    lua_setfield(L, -2, "node");
    lua_pushinteger(L, n->workers);
    lua_setfield(L, -2, "workers");
    lua_createtable(L, 0, n->nresources);
    for (int i = 0; i < n->nresources; i++) {
      lua_pushnumber(L, n->resource_counts[i]);
      lua_setfield(L, -2, n->resource_names[i]);
    }
    lua_setfield(L, -2, "resources");
    lua_pushstring(L, n->host);
    lua_setfield(L, -2, "host");
    lua_pushboolean(L, 1); /* one fate per job: a rank that died has ended it */
    lua_setfield(L, -2, "alive");
    lua_rawseti(L, -2, k + 1);
  }
  return 2;
}

/* cluster_available() -> {resource = units not held now, summed over every rank}, or
 * nothing in one process */
static int l_cluster_available(lua_State *L) {
  cray__cluster *c = cray__module_rt(L, self(L))->cluster;
  if (!c) return 0;
  int size = cray__cluster_size(c);
  cray__cluster_report *reps = lua_newuserdata(L, (size_t)size * sizeof *reps);
  if (cray__cluster_reports(c, reps) != 0)
    cray__raise(L, "invalid_argument", "cray.available_resources: the runtime is closing");
  lua_newtable(L);
  for (int k = 0; k < size; k++) {
    const cray__cluster_node *n = cray__cluster_node_of(c, k);
    for (int i = 0; i < n->nresources; i++) {
      lua_getfield(L, -1, n->resource_names[i]);
      lua_pushnumber(L, lua_tonumber(L, -1) + reps[k].free[i]);
      lua_setfield(L, -3, n->resource_names[i]);
      lua_pop(L, 1);
    }
  }
  cray__cluster_reports_free(c, reps);
  return 1;
}

/* ---- opening and closing ---- */

/* Raises in a worker's state: only the driver starts and stops the runtime (a worker
 * that closed it would wait for its own task to end). */
static void refuse_in_worker(lua_State *L, cray__lstate *ls, const char *fn) {
  if (ls->worker)
    cray__raise(L, "invalid_argument",
                "%s: cannot be called inside a task or an actor; only the driver starts and "
                "stops cray",
                fn);
}

/* _open(workers, memory, spill_dir, spill_max, worker_memory, resources, task_memory,
 * tag_output): arguments already checked by lua/cray.lua. */
static int l_open(lua_State *L) {
  cray__lstate *ls = self(L);
  refuse_in_worker(L, ls, "cray.init");
  if (ls->rt && ls->rt != g_rt)
    cray__raise(L, "invalid_argument",
                "cray.init: this state runs on a runtime its embedding program provides");
  cray_options o;
  cray_options_init(&o);
  o.workers = (int)luaL_optinteger(L, 1, 0);
  o.memory = (size_t)luaL_optnumber(L, 2, 0);
  o.spill_dir = luaL_optstring(L, 3, NULL);
  o.spill_max = (size_t)luaL_optnumber(L, 4, 0);
  o.worker_memory = (size_t)luaL_optnumber(L, 5, 0);
  o.task_memory = (size_t)luaL_optnumber(L, 7, 0);
  o.tag_output = lua_toboolean(L, 8);
  int nres = 0;
  if (lua_istable(L, 6)) {
    lua_pushnil(L);
    while (lua_next(L, 6)) lua_pop(L, 1), nres++;
  }
  const char **names = lua_newuserdata(L, (size_t)(nres ? nres : 1) * sizeof *names);
  double *counts = lua_newuserdata(L, (size_t)(nres ? nres : 1) * sizeof *counts);
  if (nres) {
    int i = 0;
    lua_pushnil(L);
    while (lua_next(L, 6)) {
      names[i] = lua_tostring(L, -2);
      counts[i++] = lua_tonumber(L, -1);
      lua_pop(L, 1);
    }
  }
  o.nresources = nres;
  o.resource_names = names;
  o.resource_counts = counts;
  int rc = open_process_rt(ls, &o);
  if (rc == CRAY_EINVAL && g_rt)
    cray__raise(L, "invalid_argument",
                "cray.init: cray is already running (call cray.shutdown first, or pass "
                "ignore_reinit_error = true)");
  if (rc) cray__raise(L, "runtime", "cray.init: %s", cray__open_error(rc));
  return 0;
}

/* Set when closing the process runtime gave up; written and read on the thread that
 * closes it (crayrun's main thread). */
static int g_abandoned;

int cray__module_abandoned(void) { return g_abandoned; }

/* Closes rt, saying on stderr how much work that cancelled. When it gives up on tasks
 * that did not end it returns 1 with why[0..n) saying which. */
static int close_rt(cray_runtime *rt, const char *when, char *why, size_t n) {
  uint64_t tasks, calls;
  if (cray__close(rt, &tasks, &calls, why, n)) return g_abandoned = 1;
  if (tasks || calls)
    cray__log(CRAY__LOG_WARN, "%llu task%s and %llu actor call%s still queued or running were "
                              "cancelled %s",
              (unsigned long long)tasks, tasks == 1 ? "" : "s", (unsigned long long)calls,
              calls == 1 ? "" : "s", when);
  return 0;
}

/* Closes the process runtime when ls opened it (and the script did not close it). */
static void release_rt(cray__lstate *ls) {
  pthread_mutex_lock(&g_mu);
  cray_runtime *rt = ls->owns_rt && ls->rt == g_rt ? g_rt : NULL;
  if (rt) g_rt = NULL;
  pthread_mutex_unlock(&g_mu);
  bind_rt(ls, NULL);
  ls->owns_rt = 0;
  char why[1024];
  if (rt && close_rt(rt, "at exit", why, sizeof why))
    cray__log(CRAY__LOG_ERROR, "%s", why);
}

/* release(): before os.exit in the driver. */
static int l_release(lua_State *L) {
  release_rt(self(L));
  return 0;
}

/* Set by a signal handler: a flag and nothing more, so relaxed. */
static _Atomic int g_signalled;

void cray__module_signalled(void) { atomic_store_explicit(&g_signalled, 1, memory_order_relaxed); }

int cray__module_was_signalled(void) {
  return atomic_load_explicit(&g_signalled, memory_order_relaxed);
}

void cray__module_interrupt(void) {
  pthread_mutex_lock(&g_mu);
  cray__sched *s = g_rt ? atomic_load_explicit(&g_rt->sched, memory_order_acquire) : NULL;
  if (s) cray__sched_interrupt(s);
  pthread_mutex_unlock(&g_mu);
}

static int l_close(lua_State *L) {
  cray__lstate *ls = self(L);
  refuse_in_worker(L, ls, "cray.shutdown");
  if (ls->rt && ls->rt != g_rt)
    cray__raise(L, "invalid_argument",
                "cray.shutdown: this state runs on a runtime its embedding program provides");
  pthread_mutex_lock(&g_mu);
  cray_runtime *rt = g_rt;
  g_rt = NULL;
  pthread_mutex_unlock(&g_mu);
  bind_rt(ls, NULL);
  ls->owns_rt = 0;
  char why[1024];
  if (close_rt(rt, "by cray.shutdown", why, sizeof why))
    cray__raise(L, "runtime", "cray.shutdown: %s", why);
  return 0;
}

/* True when this state has a runtime or the process runtime is open (need_rt binds it). */
static int l_is_open(lua_State *L) {
  pthread_mutex_lock(&g_mu);
  int open = self(L)->rt != NULL || g_rt != NULL;
  pthread_mutex_unlock(&g_mu);
  lua_pushboolean(L, open);
  return 1;
}

/* check_refs(fn, refs): raises as cray.wait does, naming fn, unless refs is an array of
 * ObjectRefs. */
static int l_check_refs(lua_State *L) {
  size_t n;
  collect_refs(L, self(L), 2, luaL_checkstring(L, 1), "an array of ObjectRefs", &n);
  return 0;
}

static int l_describe(lua_State *L) {
  cray__describe(L, 1);
  return 1;
}

static int l_parse_size(lua_State *L) {
  size_t n;
  if (cray_parse_size(luaL_checkstring(L, 1), &n) != 0) return 0;
  lua_pushnumber(L, (lua_Number)n);
  return 1;
}

void cray__module_attach(lua_State *L, cray_runtime *rt) { bind_rt(cray__lstate_get(L), rt); }

/* ---- opening the module in a state ---- */

/* The state's context dies with the state; the process runtime closes with the state that
 * opened it, if the script never called cray.shutdown. */
static int lstate_gc(lua_State *L) {
  cray__lstate *ls = lua_touserdata(L, 1);
  cray__buf_free(&ls->scratch);
  cray__free(ls->refs);
  ls->refs = NULL;
  ls->nrefs = ls->refs_cap = 0;
  cray__free(ls->splices);
  ls->splices = NULL;
  ls->nsplices = ls->splices_cap = 0;
  release_rt(ls);
  return 0;
}

static void new_lstate(lua_State *L) {
  cray__lstate *ls = lua_newuserdata(L, sizeof *ls);
  memset(ls, 0, sizeof *ls);
  cray__buf_init(&ls->scratch);
  lua_getfield(L, LUA_REGISTRYINDEX, CRAY__REG_WORKER);
  ls->worker = lua_touserdata(L, -1);
  lua_pop(L, 1);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, lstate_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, CRAY__REG_LSTATE);
}

/* Fills registry CRAY__REG_CNAMES: each C function of the standard libraries maps to its
 * name ("string.format", "print") and the name back to it, so functions that hold them as
 * upvalues can travel. */
static void add_cnames(lua_State *L, int cnames, int tbl, const char *prefix) {
  lua_pushnil(L);
  while (lua_next(L, tbl)) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_iscfunction(L, -1)) {
      lua_pushfstring(L, "%s%s", prefix, lua_tostring(L, -2)); /* key, fn, name */
      lua_pushvalue(L, -1);
      lua_pushvalue(L, -3);
      lua_rawset(L, cnames); /* name -> function */
      lua_rawset(L, cnames); /* function -> name */
    } else {
      lua_pop(L, 1);
    }
  }
}

static void open_cnames(lua_State *L) {
  static const char *const libs[] = {"string", "table", "math", "io", "os", "coroutine",
                                     "debug", "package", "bit", "jit", "ffi", NULL};
  lua_newtable(L);
  int cnames = lua_gettop(L);
  add_cnames(L, cnames, LUA_GLOBALSINDEX, "");
  lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
  for (int i = 0; libs[i]; i++) {
    lua_getfield(L, -1, libs[i]);
    if (lua_istable(L, -1)) {
      lua_pushfstring(L, "%s.", libs[i]);
      add_cnames(L, cnames, lua_gettop(L) - 1, lua_tostring(L, -1));
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, CRAY__REG_CNAMES);
}

static int load_embedded(lua_State *L) {
  const cray__lua_module *m = lua_touserdata(L, lua_upvalueindex(1));
  if (luaL_loadbuffer(L, (const char *)m->code, *m->size, m->name)) return lua_error(L);
  lua_pushstring(L, m->name);
  lua_call(L, 1, 1);
  return 1;
}

/* Registers every embedded module but "cray" in package.preload; returns "cray"'s. */
static const cray__lua_module *preload_embedded(lua_State *L) {
  const cray__lua_module *main = NULL;
  lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
  lua_getfield(L, -1, "package");
  lua_getfield(L, -1, "preload");
  for (const cray__lua_module *m = cray__lua_modules; m->name; m++) {
    if (strcmp(m->name, "cray") == 0) {
      main = m;
      continue;
    }
    lua_pushlightuserdata(L, (void *)m);
    lua_pushcclosure(L, load_embedded, 1);
    lua_setfield(L, -2, m->name);
  }
  lua_pop(L, 3);
  return main;
}

static void require_into_registry(lua_State *L, const char *name, const char *field,
                                  const char *key) {
  lua_getglobal(L, "require");
  lua_pushstring(L, name);
  lua_call(L, 1, 1);
  if (field) lua_getfield(L, -1, field), lua_remove(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, key);
}

static const luaL_Reg core_functions[] = {
    {"put", l_put},       {"get", l_get},       {"wait", l_wait},
    {"stats", l_stats},   {"_progress", l_progress}, {"objects", cray__objects_l}, {"timeline", cray__timeline_l},   {"open", l_open},     {"close", l_close},
    {"is_open", l_is_open}, {"parse_size", l_parse_size},
    {"get_buffer", l_get_buffer}, {"describe", l_describe},
    {"check_refs", l_check_refs}, {"ref", l_ref}, {"node", l_node}, {"release", l_release},
    {"cluster", l_cluster}, {"cluster_available", l_cluster_available},
    {NULL, NULL},
};

/* Opening the module again in the same state (a test runner that clears package.loaded)
 * keeps the state's context, so its ObjectRefs and runtime stay valid. */
int luaopen_cray(lua_State *L) {
  cray__lstate *ls = cray__lstate_get(L);
  if (!ls) {
    new_lstate(L);
    ls = cray__lstate_get(L);
    cray__objref_open(L);
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, CRAY__REG_CLASSES);
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, CRAY__REG_STORED);
  }
  const cray__lua_module *main = preload_embedded(L);
  require_into_registry(L, "cray.errors", "Error", CRAY__REG_ERROR_MT);
  require_into_registry(L, "cray.ffi_codec", NULL, CRAY__REG_FFI);
  cray__codec_open(L);
  open_cnames(L);

  luaL_loadbuffer(L, (const char *)main->code, *main->size, main->name);
  lua_createtable(L, 0, 16);
  for (const luaL_Reg *set[] = {core_functions, cray__task_functions, cray__actor_functions,
                                cray__io_functions, cray__stream_functions, NULL},
                      **f = set;
       *f; f++) {
    for (const luaL_Reg *r = *f; r->name; r++) {
      lua_pushlightuserdata(L, ls);
      lua_pushcclosure(L, r->func, 1);
      lua_setfield(L, -2, r->name);
    }
  }
  lua_getfield(L, LUA_REGISTRYINDEX, CRAY__REG_CLASSES);
  lua_setfield(L, -2, "classes");
  lua_pushliteral(L, CRAY_VERSION_STRING);
  lua_setfield(L, -2, "version");
  lua_pushinteger(L, CRAY__MAX_RETURNS);
  lua_setfield(L, -2, "max_returns");
  lua_pushinteger(L, CRAY__MAX_NEEDS);
  lua_setfield(L, -2, "max_needs");
  lua_pushnumber(L, (lua_Number)CRAY_WORKER_MEMORY_MIN);
  lua_setfield(L, -2, "worker_memory_min");
  lua_call(L, 1, 1);
  return 1;
}
