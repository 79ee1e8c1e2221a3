/*
 * test_actors.c: promises of runtime/actor.c that Lua cannot watch at the instant they
 * must hold. A monitor is watched here by a waiter of the test's own, whose wake runs on
 * the thread that resolves the monitor, at the moment it does: what it sees is what
 * anyone woken by that monitor would see first.
 */
#include <stdatomic.h>

#include "../../runtime/actor.h"
#include "../../runtime/runtime.h"
#include "../../runtime/wait.h"
#include "check.h"

/* A waiter that looks up a name when its entry resolves. */
typedef struct name_probe {
  cray__waiter w;
  cray__sched *s;
  const char *name;
  cray__entry *found; /* what the name led to then (one reference), or NULL */
  int woken;
} name_probe;

static void probe_wake(cray__waiter *w) {
  name_probe *p = (name_probe *)w;
  p->found = cray__actor_lookup(p->s, p->name);
  p->woken = 1;
}

/* When a monitor says a named actor died, its name is free already: a supervisor woken by
 * it can start the actor again under the same name. */
static void test_name_is_free_when_monitors_learn_of_death(void) {
  cray_runtime *rt = check_open(2, 8 << 20);
  char *err = check_run(rt,
                        "local cray = require 'cray'\n"
                        "held = cray.actor({get = function() return 1 end})"
                        ".options({name = 'watched'}).remote()\n"
                        "assert(cray.get(held.get.remote()) == 1)\n");
  CHECK(err == NULL);
  free(err);
  /* acquire: pairs with the release that publishes the scheduler (cray__runtime_sched) */
  cray__sched *s = atomic_load_explicit(&rt->sched, memory_order_acquire);
  CHECK(s != NULL);
  cray__entry *e = s ? cray__actor_lookup(s, "watched") : NULL;
  CHECK(e != NULL);
  if (!e) {
    cray_close(rt);
    return;
  }
  cray__actor *a = cray__actor_of(e);
  cray__entry *m = cray__actor_monitor(s, a, 0);
  CHECK(m != NULL);
  name_probe probe = {.w.wake = probe_wake, .s = s, .name = "watched"};
  cray__waitnode node = {.waiter = &probe.w};
  CHECK_EQ(cray__store_subscribe(rt->store, m, &node), 0);
  CHECK_EQ(cray__actor_kill(s, a, 0), 0);
  unsigned char ready;
  CHECK_EQ(cray__wait_entries(rt->store, &m, 1, 1, 30, &ready), 1);
  cray__store_unsubscribe(rt->store, m, &node); /* its shard lock: the probe's wake is done */
  CHECK(probe.woken);
  CHECK(probe.found == NULL);
  if (probe.found) cray__store_release(rt->store, probe.found);
  cray__store_release(rt->store, m);
  cray__store_release(rt->store, e);
  cray_close(rt);
}

int main(void) {
  RUN(test_name_is_free_when_monitors_learn_of_death);
  return check_done();
}
