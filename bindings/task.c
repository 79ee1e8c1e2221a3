/*
 * task.c: the C half of remote functions: submitting tasks, cancelling them, sleeping,
 * and the clock that deadlines are measured on. lua/remote.lua wraps these.
 */
#include "task.h"

#include <lauxlib.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "../runtime/alloc.h"
#include "../runtime/cluster.h"
#include "../runtime/log.h"
#include "../runtime/wait.h"
#include "codec.h"
#include "executor.h"
#include "module.h"
#include "objref.h"
#include "stream.h"

/* Fields of the spec array lua/remote.lua builds from checked options. */
enum {
  SPEC_NUM_RETURNS = 1, SPEC_MAX_RETRIES, SPEC_RETRY_EXCEPTIONS, SPEC_NAME, SPEC_RESOURCES,
  SPEC_BACKPRESSURE, SPEC_NODE,
};

static cray__lstate *self(lua_State *L) { return lua_touserdata(L, lua_upvalueindex(1)); }

static lua_Number spec_number(lua_State *L, int field) {
  lua_rawgeti(L, 2, field);
  lua_Number n = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return n;
}

int cray__check_resources(lua_State *L, cray__sched *s, const char *name,
                          cray__resource_need *need, int max) {
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    const char *res = lua_tostring(L, -2);
    double amount = lua_tonumber(L, -1), capacity = 0;
    int index = cray__sched_resource(s, res, &capacity);
    if (index < 0)
      cray__raise(L, "invalid_argument",
                  "task '%s' needs resource '%s', which this runtime does not have (add it "
                  "with cray.init{resources = ...} or --resource %s=N)",
                  name, res, res);
    if (amount > capacity)
      cray__raise(L, "invalid_argument",
                  "task '%s' needs %g of resource '%s', but the runtime has only %g", name,
                  amount, res, capacity);
    if (n < max) need[n].index = index, need[n].amount = amount;
    n++;
    lua_pop(L, 1);
  }
  if (n > max)
    cray__raise(L, "invalid_argument", "task '%s' asks for more than %d kinds of resources", name,
                max);
  return n;
}

int cray__check_node(lua_State *L, cray_runtime *rt, int node, const char *what, const char *name) {
  cray__cluster *c = rt->cluster;
  int here = c ? cray__cluster_rank(c) : 0, size = c ? cray__cluster_size(c) : 1;
  if (node < 0 || node == here) return 0;
  if (!c)
    cray__raise(L, "invalid_argument",
                "%s '%s' asks for node %d, but this runtime is one process, node 0 only (run it "
                "under mpirun or srun for more nodes: docs/cluster.md)",
                what, name, node);
  if (node >= size)
    cray__raise(L, "invalid_argument", "%s '%s' asks for node %d, but the job has nodes 0 to %d",
                what, name, node, size - 1);
  return 1;
}

/* The nodes that have n of resource res, as "nodes with it: 0, 2" (or "no node has that
 * much", or "no node has it"), into buf. */
static const char *nodes_with(cray__cluster *c, const char *res, double n, char *buf, size_t len) {
  size_t at = 0;
  for (int k = 0; k < cray__cluster_size(c) && at < len; k++) {
    if (cray__cluster_node_resource(cray__cluster_node_of(c, k), res) < n) continue;
    at += (size_t)snprintf(buf + at, len - at, "%s%d", at ? ", " : "nodes with it: ", k);
  }
  if (at) return buf;
  int any = 0;
  for (int k = 0; k < cray__cluster_size(c); k++)
    any |= cray__cluster_node_resource(cray__cluster_node_of(c, k), res) >= 0;
  snprintf(buf, len, any ? "no node has that much" : "no node has it");
  return buf;
}

/* Whether node k of c has every resource of names[0..n) in amounts[0..n). */
static int node_fits(cray__cluster *c, int k, const char **names, const double *amounts, int n) {
  for (int i = 0; i < n; i++)
    if (cray__cluster_node_resource(cray__cluster_node_of(c, k), names[i]) < amounts[i]) return 0;
  return 1;
}

int cray__place_resources(lua_State *L, cray__cluster *c, int node, const char *name,
                          cray__resource_need *need, int max, int *nres) {
  const char *names[CRAY__MAX_NEEDS];
  double amounts[CRAY__MAX_NEEDS];
  int n = 0;
  if (max > CRAY__MAX_NEEDS) max = CRAY__MAX_NEEDS;
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (n == max)
      cray__raise(L, "invalid_argument", "task '%s' asks for more than %d kinds of resources",
                  name, max);
    names[n] = lua_tostring(L, -2); /* the table on the stack keeps its keys */
    amounts[n++] = lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
  char with[128];
  int target = node;
  for (int i = 0; i < n && node >= 0; i++) {
    double has = cray__cluster_node_resource(cray__cluster_node_of(c, node), names[i]);
    if (has < 0)
      cray__raise(L, "invalid_argument",
                  "task '%s' needs resource '%s', which node %d does not have (%s)", name,
                  names[i], node, nodes_with(c, names[i], amounts[i], with, sizeof with));
    if (amounts[i] > has)
      cray__raise(L, "invalid_argument",
                  "task '%s' needs %g of resource '%s', but node %d has only %g (%s)", name,
                  amounts[i], names[i], node, has,
                  nodes_with(c, names[i], amounts[i], with, sizeof with));
  }
  if (node < 0) {
    target = cray__cluster_rank(c);
    for (int k = 0; !node_fits(c, target, names, amounts, n); k++) {
      if (k == cray__cluster_size(c)) {
        for (int i = 0; i < n; i++) {
          nodes_with(c, names[i], amounts[i], with, sizeof with);
          if (strcmp(with, "no node has it") == 0)
            cray__raise(L, "invalid_argument",
                        "task '%s' needs %g of resource '%s', which no node of the job has "
                        "(give a rank --resource %s=N)",
                        name, amounts[i], names[i], names[i]);
          if (strcmp(with, "no node has that much") == 0)
            cray__raise(L, "invalid_argument",
                        "task '%s' needs %g of resource '%s', but no node of the job has that "
                        "much",
                        name, amounts[i], names[i]);
        }
        cray__raise(L, "invalid_argument",
                    "task '%s' needs resources that no one node of the job has together",
                    name);
      }
      target = k;
    }
  }
  const cray__cluster_node *at = cray__cluster_node_of(c, target);
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < at->nresources; j++)
      if (strcmp(at->resource_names[j], names[i]) == 0) need[i].index = j;
    need[i].amount = amounts[i];
  }
  *nres = n;
  return target;
}

cray__task *cray__task_build(lua_State *L, cray__lstate *ls, int first, uint32_t nreturns,
                             uint32_t extra_deps, int nres, const char *name, uint32_t site) {
  cray_runtime *rt = ls->rt;
  int top = lua_gettop(L), nargs = top - first + 1;
  uint32_t ndeps = extra_deps;
  for (int i = first; i <= top; i++) ndeps += cray__objref_test(L, ls, i) != NULL;
  /* No arguments, no blob. */
  cray__blob *args = NULL;
  if (nargs > 0) {
    cray__codec_encode(L, ls, first, nargs, "args");
    args = cray__codec_store_blob(L, ls, (uint32_t)nargs, "a task's arguments");
  }
  cray__task *t = cray__task_new(nreturns, ndeps, nres, site ? NULL : name);
  if (!t) {
    if (args) cray__blob_release(rt->store, args);
    cray__raise(L, "out_of_memory", "no memory to submit task '%s'", name ? name : "?");
  }
  if (site) t->name = name, t->site = site;
  t->id = cray__id_new(&rt->ids);
  t->args = args;
  if (args) cray__store_count_bytes(rt->store, (int64_t)args->len);
  uint32_t j = extra_deps;
  for (int i = first; i <= top; i++) {
    cray__entry *e = cray__objref_test(L, ls, i);
    if (!e) continue;
    cray__store_retain(e);
    t->deps[j] = e;
    t->dep_arg[j++] = (uint32_t)(i - first);
  }
  for (uint32_t i = 0; i < nreturns; i++) {
    cray__entry *e = cray__store_insert(rt->store, cray__id_with_index(t->id, i + 1), NULL);
    if (!e) {
      cray__task_release(rt->store, t);
      cray__raise(L, "out_of_memory", "no memory to submit task '%s'", name ? name : "?");
    }
    t->returns[i] = e;
  }
  return t;
}

void cray__task_reserve_returns(lua_State *L, cray__lstate *ls, uint32_t n) {
  if (!lua_checkstack(L, (int)n + lua_gettop(L) + 1))
    cray__raise(L, "invalid_argument", "num_returns = %u is too many", n);
  for (uint32_t i = 0; i < n; i++) cray__objref_push_unset(L, ls);
}

void cray__task_fill_returns(lua_State *L, cray__task *t, int first, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    cray__store_retain(t->returns[i]);
    cray__objref_set(L, first + (int)i, t->returns[i]);
  }
}

/* submit(fn_ref, spec, args...) -> the refs of the task's returns; for a streaming task,
 * the ref of its end and its stream */
static int l_submit(lua_State *L) {
  cray__lstate *ls = self(L);
  cray__module_rt(L, ls);
  cray__entry *fn = cray__objref_test(L, ls, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (!fn) return luaL_argerror(L, 1, "the remote function's ObjectRef");
  cray__sched *s = cray__exec_sched(L, ls);
  int top = lua_gettop(L);
  lua_Number num_returns = spec_number(L, SPEC_NUM_RETURNS);
  lua_Number max_retries = spec_number(L, SPEC_MAX_RETRIES);
  lua_rawgeti(L, 2, SPEC_RETRY_EXCEPTIONS);
  int retry_exceptions = lua_toboolean(L, -1);
  cray__entry *retry_filter = cray__objref_test(L, ls, -1);
  lua_rawgeti(L, 2, SPEC_NAME);
  const char *name = lua_tostring(L, -1);
  int node = (int)spec_number(L, SPEC_NODE);
  int elsewhere = cray__check_node(L, ls->rt, node, "task", name ? name : "?");
  lua_rawgeti(L, 2, SPEC_RESOURCES);
  cray__resource_need need[CRAY__MAX_NEEDS];
  int nres = 0, dest = node;
  if (lua_istable(L, -1) && ls->rt->cluster) {
    /* A task that needs resources runs where they are: on its node, else here or on the
     * first rank that has them. */
    dest = cray__place_resources(L, ls->rt->cluster, node, name ? name : "?", need,
                                 CRAY__MAX_NEEDS, &nres);
    elsewhere = dest != cray__cluster_rank(ls->rt->cluster);
  } else if (lua_istable(L, -1)) {
    nres = cray__check_resources(L, s, name ? name : "?", need, CRAY__MAX_NEEDS);
  }
  /* The name stays on the stack (below the arguments' copies) while the task copies it. */
  lua_pop(L, 1);
  uint32_t nreturns = num_returns < 0 ? 1 : (uint32_t)num_returns;
  uint32_t nrefs = num_returns == 0 ? 0 : nreturns;
  int refs = top + 3;
  cray__task_reserve_returns(L, ls, nrefs);
  for (int i = 3; i <= top; i++) lua_pushvalue(L, i);

  /* The function is a dependency too while it is not stored yet (see lua/remote.lua). */
  int fn_dep = cray__entry_state(fn) != CRAY__READY;
  cray__task *t = cray__task_build(L, ls, refs + (int)nrefs, nreturns, (uint32_t)fn_dep, nres, name, 0);
  t->fn = fn;
  cray__store_retain(fn);
  t->all_values = num_returns < 0;
  t->max_retries = (int)max_retries;
  t->retry_exceptions = retry_exceptions;
  if (retry_filter) cray__store_retain(retry_filter);
  t->retry_filter = retry_filter;
  t->placed = node >= 0;
  memcpy(t->resources, need, (size_t)nres * sizeof *need);
  if (fn_dep) {
    cray__store_retain(fn);
    t->deps[0] = fn;
    t->dep_arg[0] = CRAY__DEP_FUNCTION;
  }
  cray__task_fill_returns(L, t, refs, nrefs);
  lua_settop(L, refs + (int)nrefs - 1);
  int pushed = (int)nrefs;
  if (num_returns == CRAY__STREAMING)
    pushed += cray__stream_push(L, ls, t, spec_number(L, SPEC_BACKPRESSURE));
  cray__task *parent = cray__exec_current(ls); /* a recursive cancel of it reaches t */
  if (parent) cray__sched_adopt(parent, t);
  if (elsewhere) cray__cluster_submit(ls->rt->cluster, ls->rt->store, t, dest);
  else cray__sched_submit(s, t);
  return pushed;
}

/* reserve() -> a ref to a new pending object, which fill() gives its value later. */
static int l_reserve(lua_State *L) {
  cray__lstate *ls = self(L);
  cray_runtime *rt = cray__module_rt(L, ls);
  cray__entry *e = cray__store_insert(rt->store, cray__id_new(&rt->ids), NULL);
  if (!e) return cray__raise(L, "out_of_memory", "no memory for a new object");
  cray__objref_push(L, ls, e);
  return 1;
}

/* (ls, value, label): encodes the value and reserves room for it; errors name `label`. */
static int encode_one(lua_State *L) {
  cray__lstate *ls = lua_touserdata(L, 1);
  const char *label = lua_tostring(L, 3);
  cray__codec_encode(L, ls, 2, 1, label);
  cray__codec_reserve(L, ls, cray__codec_len(ls), label);
  return 0;
}

/* Resolves e with the blob of the last encode, or with the error object on top. */
static void resolve_from(lua_State *L, cray__lstate *ls, cray__entry *e, int failed) {
  if (failed) cray__codec_encode(L, ls, lua_gettop(L), 1, "error");
  cray__blob *b = cray__codec_blob(ls, ls->rt->store, 1, CRAY__BLOB_TRUSTED);
  if (!b) cray__raise(L, "out_of_memory", "no memory to store a value");
  if (cray__store_resolve(ls->rt->store, e, b, failed) != 0) {
    cray__blob_release(ls->rt->store, b);
    cray__raise(L, "invalid_argument", "the object has its value already");
  }
}

/* Whether the error object on top is of kind out_of_memory. */
static int out_of_memory(lua_State *L) {
  if (!lua_istable(L, -1)) return 0;
  lua_getfield(L, -1, "kind");
  const char *kind = lua_tostring(L, -1);
  int oom = kind && strcmp(kind, "out_of_memory") == 0;
  lua_pop(L, 1);
  return oom;
}

/* A remote function bigger than this (its upvalues, nearly all) is logged as a warning. */
#define BIG_FUNCTION ((size_t)10 << 20)

/* fill(ref, value [, label]) -> nothing, or the error object when the value cannot be
 * stored: it names the value by `label` ("remote function 'f'") and points at the user's
 * line that made it be stored. The object stays pending when the store had no room (the
 * caller fills it again later), and otherwise holds that error (so what waits for it
 * fails, not hangs). */
static int l_fill(lua_State *L) {
  cray__lstate *ls = self(L);
  cray__entry *e = cray__objref_test(L, ls, 1);
  if (!e || cray__entry_state(e) != CRAY__PENDING)
    return cray__raise(L, "invalid_argument", "storing a value: its ref is not a reserved one");
  const char *label = luaL_optstring(L, 3, "value");
  lua_settop(L, 3);
  lua_pushcfunction(L, encode_one);
  lua_pushlightuserdata(L, ls);
  lua_pushvalue(L, 2);
  lua_pushstring(L, label);
  int failed = lua_pcall(L, 3, 0, 0) != 0;
  int level = failed && lua_istable(L, -1) ? cray__user_level(L, 1) : 0;
  if (level) { /* raised where no user frame was in sight */
    luaL_where(L, level);
    lua_getfield(L, -2, "message");
    lua_concat(L, 2);
    lua_setfield(L, -2, "message");
    luaL_traceback(L, L, NULL, level);
    cray__traceback_clean(L);
    lua_setfield(L, -2, "traceback");
  }
  if (failed && out_of_memory(L)) return 1;
  if (!failed && lua_type(L, 2) == LUA_TFUNCTION && cray__codec_len(ls) > BIG_FUNCTION) {
    char size[32];
    cray__log(CRAY__LOG_WARN,
              "%s is %s with the upvalues it captures, stored once and loaded by every worker "
              "that runs it; pass big values with cray.put and an argument instead",
              label, cray__log_size(cray__codec_len(ls), size));
  }
  resolve_from(L, ls, e, failed);
  return failed;
}

/* publish_class(name, metatable): lets other states (workers) load the class when they
 * meet one of its tables. Raises when the metatable cannot be stored. */
static int l_publish_class(lua_State *L) {
  cray__lstate *ls = self(L);
  cray_runtime *rt = cray__module_rt(L, ls);
  size_t len;
  const char *name = luaL_checklstring(L, 1, &len);
  cray__codec_encode(L, ls, 2, 1, "metatable");
  cray__blob *b = cray__codec_blob(ls, rt->store, 1, CRAY__BLOB_TRUSTED);
  if (!b || cray__classes_put(&rt->classes, rt->store, name, len, b) != 0)
    return cray__raise(L, "out_of_memory", "no memory to publish class '%s'", name);
  return 0;
}

/* cancel(ref, recursive) -> true when a task that had not finished was told to stop */
static int l_cancel(lua_State *L) {
  cray__lstate *ls = self(L);
  cray__entry *e = cray__objref_test(L, ls, 1);
  if (!e)
    cray__raise(L, "invalid_argument", "cray.cancel: expects an ObjectRef (got %s)",
                cray__describe(L, 1));
  /* acquire: pairs with the release that publishes it (cray__runtime_sched) */
  cray__sched *s = atomic_load_explicit(&ls->rt->sched, memory_order_acquire);
  int here = s && cray__sched_cancel(s, e, lua_toboolean(L, 2));
  /* A task sent to another rank has a shadow here, which the scheduler does not run. */
  int elsewhere = ls->rt->cluster && cray__cluster_cancel(ls->rt->cluster, e);
  lua_pushboolean(L, here || elsewhere);
  return 1;
}

static int l_now(lua_State *L) {
  lua_pushnumber(L, cray__now());
  return 1;
}

/* sleep_until(deadline, yieldable): yields inside a task, blocks the thread elsewhere. */
static int l_sleep_until(lua_State *L) {
  cray__lstate *ls = self(L);
  double deadline = luaL_checknumber(L, 1);
  if (cray__lstate_wait(L, ls, NULL, 0, 0, deadline, lua_toboolean(L, 2), "cray.sleep"))
    return lua_yield(L, 0);
  /* In steps of at most CRAY__FOREVER, so that a deadline of infinity sleeps forever. */
  for (double left; (left = deadline - cray__now()) > 0;) {
    if (left > CRAY__FOREVER) left = CRAY__FOREVER;
    struct timespec ts = {(time_t)left, (long)((left - floor(left)) * 1e9)};
    /* A signal that stops the program (crayrun's Ctrl-C) ends the sleep. */
    if (nanosleep(&ts, NULL) != 0 && cray__module_was_signalled()) break;
  }
  return 0;
}

static int l_retry(lua_State *L) {
  lua_pushlightuserdata(L, CRAY__RETRY);
  return 1;
}

static int l_in_worker(lua_State *L) {
  lua_pushboolean(L, self(L)->worker != NULL);
  return 1;
}

const luaL_Reg cray__task_functions[] = {
    {"submit", l_submit},           {"cancel", l_cancel}, {"now", l_now},
    {"sleep_until", l_sleep_until}, {"retry", l_retry},   {"in_worker", l_in_worker},
    {"reserve", l_reserve},         {"fill", l_fill},     {"publish_class", l_publish_class},
    {NULL, NULL},
};
