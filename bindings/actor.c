/*
 * actor.c: the C half of actors: creating them, calling their methods, killing and
 * monitoring them, and what a method asks about its own actor. lua/actor.lua wraps these.
 *
 * A handle is three values, which lua/actor.lua keeps in a table: an ObjectRef to the
 * actor's entry (runtime/actor.h), an ObjectRef to its class, and the class's name.
 */
#include "actor.h"

#include <lauxlib.h>
#include <string.h>

#include "../runtime/actor.h"
#include "../runtime/alloc.h"
#include "../runtime/cluster.h"
#include "../runtime/id.h"
#include "../runtime/runtime.h"
#include "../runtime/sites.h"
#include "executor.h"
#include "module.h"
#include "objref.h"
#include "stream.h"
#include "task.h"

static cray__lstate *self(lua_State *L) { return lua_touserdata(L, lua_upvalueindex(1)); }

/* Fields of the spec arrays lua/actor.lua builds from checked options. */
enum {
  NEW_NAME = 1, NEW_GET_IF_EXISTS, NEW_MAX_RESTARTS, NEW_MAX_TASK_RETRIES,
  NEW_MAX_CONCURRENCY, NEW_CLASS_NAME, NEW_INIT_NAME, NEW_RESOURCES, NEW_MAX_PENDING_CALLS,
  NEW_RESTART_ON_ERROR, NEW_NODE, NEW_NO_INIT,
};
enum { CALL_NUM_RETURNS = 1, CALL_NAME, CALL_METHOD_AT, CALL_BACKPRESSURE };

static int spec_int(lua_State *L, int field) {
  lua_rawgeti(L, 2, field);
  int n = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return n;
}

/* Pushes the three parts of a's handle. Each ref is made before it takes its reference,
 * so running out of memory leaks none. */
static int push_handle(lua_State *L, cray__lstate *ls, cray__actor *a) {
  cray__objref_push_unset(L, ls);
  cray__store_retain(a->entry);
  cray__objref_set(L, -1, a->entry);
  cray__objref_push_unset(L, ls);
  cray__store_retain(a->cls);
  cray__objref_set(L, -1, a->cls);
  lua_pushstring(L, a->class_name);
  return 3;
}

/* The actor of the handle's entry at idx, or NULL with *remote set to the entry when the
 * actor lives on another rank (docs/cluster.md); raises when it is neither. */
static cray__actor *actor_arg(lua_State *L, cray__lstate *ls, int idx, const char *fn,
                              cray__entry **remote) {
  cray__entry *e = cray__objref_test(L, ls, idx);
  cray__actor *a = e ? cray__actor_of(e) : NULL;
  *remote = e && e->actor == CRAY__ENTRY_REMOTE_ACTOR && ls->rt->cluster ? e : NULL;
  if (!a && !*remote) cray__raise(L, "invalid_argument", "%s: expects an actor handle", fn);
  return a;
}

/* The creator's spec at index 2: ls->new_spec when it was read there last, else read
 * from its table, and kept there once complete. */
static const struct cray__new_spec *new_spec(lua_State *L, cray__lstate *ls,
                                             struct cray__new_spec *mine) {
  const void *table = lua_topointer(L, 2);
  if (ls->new_spec.table == table) return &ls->new_spec;
  *mine = (struct cray__new_spec){
      .table = table,
      .get_if_exists = spec_int(L, NEW_GET_IF_EXISTS),
      .max_restarts = spec_int(L, NEW_MAX_RESTARTS),
      .max_task_retries = spec_int(L, NEW_MAX_TASK_RETRIES),
      .max_concurrency = spec_int(L, NEW_MAX_CONCURRENCY),
      .max_pending_calls = spec_int(L, NEW_MAX_PENDING_CALLS),
      .restart_on_error = spec_int(L, NEW_RESTART_ON_ERROR),
      .node = spec_int(L, NEW_NODE),
  };
  lua_rawgeti(L, 2, NEW_NAME);
  mine->name = lua_tostring(L, -1);
  lua_rawgeti(L, 2, NEW_CLASS_NAME);
  mine->class_name = lua_tostring(L, -1);
  lua_rawgeti(L, 2, NEW_INIT_NAME);
  mine->init_name = lua_tostring(L, -1);
  lua_rawgeti(L, 2, NEW_RESOURCES);
  mine->resources = lua_istable(L, -1);
  lua_rawgeti(L, 2, NEW_NO_INIT);
  mine->no_init = lua_isnil(L, -1) ? -1 : (int)lua_tointeger(L, -1);
  lua_pop(L, 5); /* the strings are the table's, which the caller holds */
  if (mine->no_init < 0) return mine;
  if (ls->new_spec.table) luaL_unref(L, LUA_REGISTRYINDEX, ls->new_spec_ref);
  lua_pushvalue(L, 2);
  ls->new_spec_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  ls->new_spec = *mine;
  return &ls->new_spec;
}

/* actor_create(class_ref, spec, args...) -> the actor's ref; or when get_if_exists found
 * the named actor, its handle's parts */
static int l_actor_create(lua_State *L) {
  cray__lstate *ls = self(L);
  cray__module_rt(L, ls);
  cray__entry *cls = cray__objref_test(L, ls, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (!cls) return luaL_argerror(L, 1, "the actor class's ObjectRef");
  cray__sched *s = cray__exec_sched(L, ls);
  int top = lua_gettop(L);
  /* The actor's ref is made first: when memory runs out for it, nothing is made yet. */
  cray__objref_push_unset(L, ls);
  struct cray__new_spec mine;
  const struct cray__new_spec *n = new_spec(L, ls, &mine);
  cray__actor_spec spec = {
      .name = n->name,
      .class_name = n->class_name,
      .get_if_exists = n->get_if_exists,
      .max_restarts = n->max_restarts,
      .max_task_retries = n->max_task_retries,
      .max_concurrency = n->max_concurrency,
      .max_pending_calls = n->max_pending_calls,
      .restart_on_error = n->restart_on_error,
  };
  const char *init_name = n->init_name;
  int node = n->node;
  int elsewhere = cray__check_node(L, ls->rt, node, "actor", spec.class_name);
  if (elsewhere && spec.name)
    return cray__raise(L, "invalid_argument",
                       "actor '%s' asks for a name and node %d: named actors live on the rank "
                       "that makes them (docs/cluster.md)", spec.name, node);
  if (n->resources) lua_rawgeti(L, 2, NEW_RESOURCES);
  else lua_pushnil(L);
  if (elsewhere && lua_istable(L, -1)) {
    lua_pushnil(L);
    if (lua_next(L, -2))
      cray__raise(L, "invalid_argument",
                  "actor '%s' asks for resources and node %d: resources on other nodes are not "
                  "supported yet", spec.class_name, node);
  }
  cray__resource_need need[CRAY__MAX_NEEDS];
  int nres = lua_istable(L, -1) ? cray__check_resources(L, s, init_name, need, CRAY__MAX_NEEDS)
                                : 0;
  lua_pop(L, 1);
  /* A class from another rank may still be on its way: init waits for it, as a task
   * waits for its function (docs/cluster.md). */
  int cls_dep = cray__entry_state(cls) != CRAY__READY;
  /* An init that would do nothing (no init in the class, no arguments, no resources) is
   * not made: the actor's first call makes its instance. */
  cray__task *init = NULL;
  if (elsewhere || cls_dep || nres || top > 2 || n->no_init != 1) {
    for (int i = 3; i <= top; i++) lua_pushvalue(L, i);
    init = cray__task_build(L, ls, top + 2, 0, (uint32_t)cls_dep, nres, init_name, 0);
    if (cls_dep) {
      cray__store_retain(cls);
      init->deps[0] = cls;
      init->dep_arg[0] = CRAY__DEP_FUNCTION;
    }
    memcpy(init->resources, need, (size_t)nres * sizeof *need);
    init->method = init->name + strlen(init->name) - 4;
  }
  if (elsewhere) {
    cray__entry *made = cray__cluster_actor_create(ls->rt->cluster, ls->rt->store, &spec, cls,
                                                   init, node);
    if (!made)
      return cray__raise(L, "actor_died", "actor '%s' was not made on node %d: the runtime is "
                         "shutting down", spec.class_name, node);
    lua_settop(L, top + 1);
    cray__objref_set(L, top + 1, made);
    return 1;
  }
  cray__entry *e;
  int rc = cray__actor_create(s, &spec, cls, init, &e);
  if (rc < 0) return cray__raise(L, "out_of_memory", "no memory to create an actor");
  if (rc == CRAY__ACTOR_NAME_TAKEN)
    return cray__raise(L, "invalid_argument",
                       "an actor named '%s' exists already (pass get_if_exists = true to get it)",
                       spec.name);
  lua_settop(L, top + 1);
  cray__objref_set(L, top + 1, e); /* the ref releases e when collected, whatever follows */
  if (rc == CRAY__ACTOR_EXISTS) return push_handle(L, ls, cray__actor_of(e));
  return 1;
}

/* Whether cs holds the spec read from `table` for this state's runtime. */
static int holds(const struct cray__call_spec *cs, const cray__lstate *ls, const void *table) {
  return cs->table == table && table && cs->epoch == ls->epoch;
}

/* The call spec at index 2, from ls->call_specs when it was read there before, else read
 * from its table and kept there, with its name interned in the runtime's sites: a call
 * reads no table and copies no name. The specs are kept two to a set, chosen by the
 * table's address: a new one takes the first place and moves the one there to the
 * second. When the sites are full, the spec is read into *mine, its name (left on the
 * stack) is not interned, and it is not kept. */
static const struct cray__call_spec *call_spec(lua_State *L, cray__lstate *ls,
                                               struct cray__call_spec *mine) {
  const void *table = lua_topointer(L, 2);
  size_t i = (((uintptr_t)table >> 6) & (CRAY__CALL_SPECS / 2 - 1)) * 2;
  struct cray__call_spec *cs = &ls->call_specs[i];
  if (holds(&cs[0], ls, table)) return &cs[0];
  if (holds(&cs[1], ls, table)) return &cs[1];
  luaL_checktype(L, 2, LUA_TTABLE);
  mine->num_returns = spec_int(L, CALL_NUM_RETURNS);
  mine->method_at = spec_int(L, CALL_METHOD_AT);
  lua_rawgeti(L, 2, CALL_NAME);
  mine->name = lua_tostring(L, -1);
  if (!(mine->site = cray__sites_intern(ls->rt->sites, mine->name))) return mine;
  lua_pop(L, 1);
  mine->name = cray__sites_name(ls->rt->sites, mine->site);
  if (!ls->call_specs_ref) {
    lua_createtable(L, CRAY__CALL_SPECS, 0);
    ls->call_specs_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, ls->call_specs_ref);
  lua_rawgeti(L, -1, (int)i + 1);
  lua_rawseti(L, -2, (int)i + 2);
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, (int)i + 1);
  lua_pop(L, 1);
  cs[1] = cs[0];
  cs[0] = *mine;
  cs[0].table = table;
  cs[0].epoch = ls->epoch;
  return &cs[0];
}

/* actor_call(actor_ref, spec, args...) -> the refs of the call's returns */
static int l_actor_call(lua_State *L) {
  cray__lstate *ls = self(L);
  cray__module_rt(L, ls);
  cray__entry *remote;
  cray__actor *a = actor_arg(L, ls, 1, "actor call", &remote);
  cray__sched *s = cray__exec_sched(L, ls);
  int top = lua_gettop(L);
  struct cray__call_spec mine;
  const struct cray__call_spec *cs = call_spec(L, ls, &mine);
  int num_returns = cs->num_returns;
  const char *name = cs->name;
  uint32_t nreturns = num_returns < 0 ? 1 : (uint32_t)num_returns;
  uint32_t nrefs = num_returns == 0 ? 0 : nreturns;
  int refs = lua_gettop(L) + 1;
  cray__task_reserve_returns(L, ls, nrefs);
  for (int i = 3; i <= top; i++) lua_pushvalue(L, i);
  cray__task *t = cray__task_build(L, ls, refs + (int)nrefs, nreturns, 0, 0, name, cs->site);
  t->all_values = num_returns < 0;
  t->actor = a;
  t->method = t->name + cs->method_at;
  t->fn = a ? a->entry : remote;
  cray__store_retain(t->fn);
  int pushed = (int)nrefs;
  if (remote) { /* its rank counts it against max_pending_calls */
    cray__task_fill_returns(L, t, refs, nrefs);
    lua_settop(L, refs + (int)nrefs - 1);
    if (num_returns == CRAY__STREAMING)
      pushed += cray__stream_push(L, ls, t, spec_int(L, CALL_BACKPRESSURE));
    cray__cluster_submit(ls->rt->cluster, ls->rt->store, t, cray__id_owner(&remote->id));
    return pushed;
  }
  if (cray__actor_count_pending(a, t)) {
    cray__task_release(ls->rt->store, t);
    char who[160];
    cray__actor_describe(a, who, sizeof who);
    return cray__raise(L, "pending_calls_exceeded",
                       "%s has %d calls pending (max_pending_calls = %d): '%s' was not sent",
                       who, a->max_pending_calls, a->max_pending_calls, name ? name : "?");
  }
  cray__task_fill_returns(L, t, refs, nrefs);
  lua_settop(L, refs + (int)nrefs - 1);
  if (num_returns == CRAY__STREAMING)
    pushed += cray__stream_push(L, ls, t, spec_int(L, CALL_BACKPRESSURE));
  cray__sched_submit(s, t);
  return pushed;
}

/* actor_kill(actor_ref, restart) -> true when the actor was alive */
static int l_actor_kill(lua_State *L) {
  cray__lstate *ls = self(L);
  cray__entry *remote;
  cray__actor *a = actor_arg(L, ls, 1, "cray.kill", &remote);
  if (remote) {
    lua_pushboolean(L, cray__cluster_actor_kill(ls->rt->cluster, remote, lua_toboolean(L, 2)));
    return 1;
  }
  lua_pushboolean(L, cray__actor_kill(cray__exec_sched(L, ls), a, lua_toboolean(L, 2)) == 0);
  return 1;
}

/* actor_monitor(actor_ref, restarts) -> a ref that resolves when the actor dies (or, with
 * restarts, restarts) */
static int l_actor_monitor(lua_State *L) {
  cray__lstate *ls = self(L);
  cray__entry *remote;
  cray__actor *a = actor_arg(L, ls, 1, "cray.monitor", &remote);
  cray__sched *s = remote ? NULL : cray__exec_sched(L, ls);
  cray__objref_push_unset(L, ls); /* first: running out of memory for it leaks nothing */
  cray__entry *m = remote ? cray__cluster_actor_monitor(ls->rt->cluster, ls->rt, remote,
                                                        lua_toboolean(L, 2))
                          : cray__actor_monitor(s, a, lua_toboolean(L, 2));
  if (!m) return cray__raise(L, "out_of_memory", "cray.monitor: no memory");
  cray__objref_set(L, -1, m);
  return 1;
}

/* The actor call running in L's state; raises naming fn when there is none. */
static cray__task *current_call(lua_State *L, cray__lstate *ls, const char *fn) {
  cray__task *t = cray__exec_current(ls);
  if (!t || !t->actor)
    cray__raise(L, "invalid_argument", "%s: only an actor's method can call it", fn);
  return t;
}

/* actor_self() -> the handle's parts of the actor whose method runs */
static int l_actor_self(lua_State *L) {
  cray__lstate *ls = self(L);
  return push_handle(L, ls, current_call(L, ls, "cray.self")->actor);
}

/* actor_exit(): the actor ends when the running method returns */
static int l_actor_exit(lua_State *L) {
  cray__lstate *ls = self(L);
  current_call(L, ls, "cray.exit_actor")->exit_after = 1;
  return 0;
}

/* context() -> the running task's id (hex), name and worker index, then its actor's
 * handle's parts when it is an actor call; nothing outside a task (the driver) */
static int l_context(lua_State *L) {
  cray__lstate *ls = self(L);
  cray__task *t = cray__exec_current(ls);
  if (!t) return 0;
  char hex[33];
  cray_id_format(&t->id, hex);
  lua_pushlstring(L, hex, 32);
  lua_pushstring(L, t->name);
  lua_pushinteger(L, t->home);
  return 3 + (t->actor ? push_handle(L, ls, t->actor) : 0);
}

/* get_actor(name) -> the handle's parts, or nothing */
static int l_get_actor(lua_State *L) {
  cray__lstate *ls = self(L);
  const char *name = luaL_checkstring(L, 1);
  cray__module_rt(L, ls);
  cray__sched *s = cray__exec_sched(L, ls);
  cray__entry *e = cray__actor_lookup(s, name);
  if (!e) return 0;
  int n = push_handle(L, ls, cray__actor_of(e));
  cray__store_release(ls->rt->store, e);
  return n;
}

/* actor_name(op, name [, handle_ref, actor_ref]) -> under MPI, rank 0's answer ("mine",
 * "taken", "busy", "found", "none", "done", "closed") and the ref of the named actor's
 * handle when there is one; nothing in one process. op: "claim", "set", "lookup", "drop"
 * (see cray__cluster_name). */
static int l_actor_name(lua_State *L) {
  static const char *const ops[] = {"claim", "set", "lookup", "drop", NULL};
  static const char *const answers[] = {"mine", "taken", "busy", "found", "none", "done", "closed"};
  cray__lstate *ls = self(L);
  cray__module_rt(L, ls);
  int op = luaL_checkoption(L, 1, NULL, ops);
  const char *name = luaL_checkstring(L, 2);
  if (!ls->rt->cluster) return 0;
  cray__entry *ref = cray__objref_test(L, ls, 3), *actor = cray__objref_test(L, ls, 4);
  if (op == CRAY__NAME_SET && (!ref || !actor)) return luaL_argerror(L, 3, "the handle's ref");
  cray_id none = {0, 0};
  cray__entry *out;
  int status = cray__cluster_name(ls->rt->cluster, ls->rt->store, op, name, ref,
                                  actor ? &actor->id : &none, &out);
  lua_pushstring(L, answers[status]);
  if (!out) return 1;
  cray__objref_push(L, ls, out);
  return 2;
}

/* (count, with_nodes): the arrays of names and of nodes of the count NUL-ended names at
 * upvalue 1, each after its node (4 bytes, big-endian) when with_nodes, else on node 0. */
static int push_names(lua_State *L) {
  const uint8_t *p = lua_touserdata(L, lua_upvalueindex(1));
  int n = (int)lua_tointeger(L, 1), with_nodes = lua_toboolean(L, 2);
  lua_createtable(L, n, 0);
  lua_createtable(L, n, 0);
  for (int i = 1; i <= n; i++) {
    uint32_t node = 0;
    if (with_nodes) {
      node = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
      p += 4;
    }
    lua_pushstring(L, (const char *)p);
    lua_rawseti(L, -3, i);
    lua_pushinteger(L, node);
    lua_rawseti(L, -2, i);
    p += strlen((const char *)p) + 1;
  }
  return 2;
}

/* actor_names() -> the array of the names of actors alive now, and the array of the
 * nodes they live on: the job's under MPI (rank 0 keeps them), else this runtime's. */
static int l_actor_names(lua_State *L) {
  cray__lstate *ls = self(L);
  cray__module_rt(L, ls);
  size_t n = 0;
  char *names = NULL;
  cray__buf job;
  cray__buf_init(&job);
  if (ls->rt->cluster) {
    int closed = cray__cluster_names(ls->rt->cluster, &job) != 0, failed = job.failed;
    if (closed || failed) {
      cray__buf_free(&job);
      return closed ? cray__raise(L, "runtime", "cray.list_actors: the runtime is shut down")
                    : cray__raise(L, "out_of_memory", "cray.list_actors: no memory");
    }
    for (size_t i = 4; i < job.len; i += strlen((const char *)job.data + i) + 1 + 4) n++;
  } else if (!(names = cray__actor_names_copy(cray__exec_sched(L, ls), &n))) {
    return cray__raise(L, "out_of_memory", "cray.list_actors: no memory");
  }
  lua_pushlightuserdata(L, names ? (void *)names : (void *)job.data);
  lua_pushcclosure(L, push_names, 1);
  lua_pushinteger(L, (lua_Integer)n);
  lua_pushboolean(L, names == NULL);
  int rc = lua_pcall(L, 2, 2, 0);
  cray__free(names);
  cray__buf_free(&job);
  return rc ? lua_error(L) : 2;
}

/* class_table(class_ref) -> the class, as this state has it */
static int l_class_table(lua_State *L) {
  cray__lstate *ls = self(L);
  cray__entry *e = cray__objref_test(L, ls, 1);
  if (!e || cray__entry_state(e) != CRAY__READY)
    return cray__raise(L, "invalid_argument", "class_table: expects a stored class");
  cray__exec_push_stored(L, ls, e, LUA_TTABLE);
  return 1;
}

const luaL_Reg cray__actor_functions[] = {
    {"actor_create", l_actor_create},   {"actor_call", l_actor_call},
    {"actor_kill", l_actor_kill},       {"actor_monitor", l_actor_monitor},
    {"actor_self", l_actor_self},       {"actor_exit", l_actor_exit},
    {"get_actor", l_get_actor},         {"class_table", l_class_table},
    {"context", l_context},             {"actor_names", l_actor_names},
    {"actor_name", l_actor_name},
    {NULL, NULL},
};
