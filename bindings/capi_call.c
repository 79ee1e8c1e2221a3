/*
 * capi_call.c: cray_call, cray_actor_create and cray_actor_call, the C API's tasks and
 * actors.
 *
 * The tasks are built from bytes by runtime/call.c and run like any other; this file is in
 * bindings/ only because the first call starts the scheduler with the LuaJIT executor
 * (a C program may call before any Lua state exists). Each function is safe from any
 * thread: it touches only the store, the scheduler's queues and the names table, each
 * under its own lock.
 */
#include <stdio.h>
#include <string.h>

#include "../runtime/actor.h"
#include "../runtime/call.h"
#include "../runtime/runtime.h"
#include "executor.h"

/* The scheduler, started on first use; NULL with *rc set when it cannot start or stops. */
static cray__sched *sched_of(cray_runtime *rt, int *rc) {
  cray__sched *s = cray__exec_sched_c(rt);
  *rc = !s ? CRAY_ENOMEM : cray__sched_stopping(s) ? CRAY_ECLOSED : 0;
  return *rc ? NULL : s;
}

/* Hands t (one return) to s, giving the caller a reference to its return. */
static void submit_one(cray__sched *s, cray__task *t, cray_id *result) {
  cray__store_retain(t->returns[0]);
  cray__store_hand_out(t->returns[0]);
  *result = t->returns[0]->id;
  cray__sched_submit(s, t);
}

int cray_call(cray_runtime *rt, const char *function, const void *args, size_t len,
              cray_id *result) {
  if (!rt || !function || !args || !result || !cray__call_name_ok(function)) return CRAY_EINVAL;
  int c = strncmp(function, "c.", 2) == 0, rc;
  if (c && !cray__cfunc_exists(&rt->cfuncs, function, strlen(function))) return CRAY_ENOTFOUND;
  cray__sched *s = sched_of(rt, &rc);
  if (!s) return rc;
  cray__task *t;
  if ((rc = cray__call_task(rt, function, args, len, 1, &t))) return rc;
  if (!(t->fn = cray__named_entry(rt, function))) {
    cray__task_release(rt->store, t);
    return CRAY_ENOMEM;
  }
  t->all_values = 1;
  t->max_retries = 3; /* as cray.remote's default: a worker state lost to out of memory */
  submit_one(s, t, result);
  return 0;
}

int cray_actor_create(cray_runtime *rt, const char *cls, const void *args, size_t len,
                      cray_id *actor) {
  if (!rt || !cls || !args || !actor || !cray__call_name_ok(cls)) return CRAY_EINVAL;
  int rc;
  cray__sched *s = sched_of(rt, &rc);
  if (!s) return rc;
  char init_name[272];
  snprintf(init_name, sizeof init_name, "%s.init", cls);
  cray__task *init;
  if ((rc = cray__call_task(rt, init_name, args, len, 0, &init))) return rc;
  init->method = init->name + strlen(init->name) - 4;
  cray__entry *class_entry = cray__named_entry(rt, cls), *e;
  if (!class_entry) {
    cray__task_release(rt->store, init);
    return CRAY_ENOMEM;
  }
  cray__actor_spec spec = {.class_name = cls, .max_concurrency = 1};
  rc = cray__actor_create(s, &spec, class_entry, init, &e);
  cray__store_release(rt->store, class_entry); /* the actor holds its own */
  if (rc < 0) return rc;
  cray__store_hand_out(e);
  *actor = e->id;
  return 0;
}

int cray_actor_call(cray_runtime *rt, const cray_id *actor, const char *method,
                    const void *args, size_t len, cray_id *result) {
  if (!rt || !actor || !method || !args || !result || !cray__call_ident_ok(method, 200)) return CRAY_EINVAL;
  int rc;
  cray__sched *s = sched_of(rt, &rc);
  if (!s) return rc;
  cray__entry *e = cray__store_lookup(rt->store, actor);
  if (!e) return CRAY_ENOTFOUND;
  cray__actor *a = cray__actor_of(e);
  if (!a) {
    cray__store_release(rt->store, e);
    return CRAY_EINVAL;
  }
  char name[512];
  int at = snprintf(name, sizeof name, "%s.", a->class_name);
  if (at < 0 || (size_t)at + strlen(method) >= sizeof name) {
    cray__store_release(rt->store, e);
    return CRAY_EINVAL;
  }
  memcpy(name + at, method, strlen(method) + 1);
  cray__task *t;
  if ((rc = cray__call_task(rt, name, args, len, 1, &t))) {
    cray__store_release(rt->store, e);
    return rc;
  }
  t->all_values = 1;
  t->actor = a;
  t->method = t->name + at;
  t->fn = e; /* the lookup's reference */
  submit_one(s, t, result);
  return 0;
}
