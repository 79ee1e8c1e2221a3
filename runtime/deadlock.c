/*
 * deadlock.c: a driver's wait that notices when nothing anywhere can make progress.
 *
 * A wait with a timeout ends by itself and is left alone. Without one, the driver waits in
 * slices. After each slice that ends short, it looks at the whole
 * runtime with every worker's lock held (in index order; nothing else holds two): when
 * every worker sleeps with empty queues, no timer is pending, no other thread waits the
 * same way, and the counts of submitted and ended tasks did not move since the last look,
 * nothing can resolve what the driver waits for. Work in flight to or from other ranks
 * (cluster.h) counts as progress. It then follows the wait-for chain from
 * the first entry it waits for: an entry to the task that will resolve it, a suspended
 * task to what it waits for, an actor call in a mailbox to a call that holds the actor's
 * slot, until the chain ends or comes back to a task it passed. While the locks are held
 * the workers cannot move, so what it reads is one consistent picture; store shard locks
 * are only tried (wakes take them before a worker's lock), and a busy one ends the look.
 */
#include <stdarg.h>
#include <stdio.h>

#include "actor.h"
#include "cluster.h"
#include "runtime.h"
#include "sched_internal.h"
#include "wait.h"

#define MAX_STEPS 32

typedef struct out {
  char *p;
  size_t left;
} out;

static void say(out *o, const char *fmt, ...) {
  if (o->left <= 1) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(o->p, o->left, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  size_t k = (size_t)n < o->left ? (size_t)n : o->left - 1;
  o->p += k;
  o->left -= k;
}

static const char *name_of(const cray__task *t) { return t->name ? t->name : "?"; }

/* Says "'name'", and for an actor call which actor it is for. */
static void subject(out *o, const cray__task *t) {
  say(o, "'%s'", name_of(t));
  if (!t->actor) return;
  if (t->actor->name) {
    say(o, " of actor '%s'", t->actor->name);
  } else {
    char hex[33];
    cray_id_format(&t->actor->id, hex);
    say(o, " of actor %s", hex);
  }
}

/* Every worker asleep with nothing queued, no timer or I/O pending, no other waiting driver.
 * Returns with every worker's lock held when it is so (the caller unlocks). */
static int quiet(cray__sched *s, uint64_t *activity) {
  for (int i = 0; i < s->n; i++) pthread_mutex_lock(&s->workers[i].mu);
  /* relaxed: a hint; the verdict rests on the workers' locks and two quiet looks in a row */
  int still = cray__timers_pending(s->timers) == 0 && cray__io_pending(s->io) == 0 &&
              atomic_load_explicit(&s->drivers_waiting, memory_order_relaxed) == 1 &&
              !(s->rt->cluster && cray__cluster_inflight(s->rt->cluster));
  for (int i = 0; still && i < s->n; i++) {
    worker *w = &s->workers[i];
    still = w->sleeping && !w->ihead && !w->qhead && !w->rhead;
  }
  cray__sched_stats st;
  cray__sched_stats_get(s, &st);
  *activity = st.submitted + st.finished + st.failed;
  return still;
}

static void unlock_all(cray__sched *s) {
  for (int i = s->n - 1; i >= 0; i--) pthread_mutex_unlock(&s->workers[i].mu);
}

/* The first pending entry of v[0..n), or NULL. */
static cray__entry *first_pending(cray__entry *const *v, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (cray__entry_state(v[i]) == CRAY__PENDING) return v[i];
  return NULL;
}

/* Says what waiting for e means and returns the task that would resolve it (NULL: none).
 * *busy is set when a shard lock was busy. */
static cray__task *producer(cray__sched *s, out *o, cray__entry *e, int *busy) {
  void *p = NULL;
  if (!cray__store_try_producer(s->store, e, &p)) {
    *busy = 1;
    return NULL;
  }
  if (p) say(o, "the result of "), subject(o, p);
  else say(o, "an object that nothing will produce");
  return p;
}

/* Writes the chain from e; 0 when a busy lock cut it short. */
static int explain(cray__sched *s, cray__entry *e, out *o) {
  say(o, "deadlock: nothing can make progress; the wait-for chain:\n  the driver waits for ");
  int busy = 0;
  cray__task *t = producer(s, o, e, &busy), *seen[MAX_STEPS];
  for (int steps = 0; t && !busy; steps++) {
    for (int i = 0; i < steps; i++) {
      if (seen[i] == t) {
        say(o, "\n  and so on: ");
        subject(o, t);
        say(o, " is where the cycle began");
        return 1;
      }
    }
    if (steps == MAX_STEPS) {
      say(o, "\n  ...");
      return 1;
    }
    seen[steps] = t;
    /* relaxed: read for the explanation only, under every worker's lock */
    int state = atomic_load_explicit(&t->state, memory_order_relaxed);
    cray__task *next = NULL;
    say(o, "\n  ");
    subject(o, t);
    if (t->actor && state == CRAY__TASK_QUEUED) {
      next = t->actor->started;
      say(o, " waits in its actor's mailbox");
      if (next) say(o, " behind "), subject(o, next), say(o, ", which holds the actor's slot");
    } else if (state == CRAY__TASK_SUSPENDED && t->nwait) {
      cray__entry *p = first_pending(t->wait_entries, t->nwait);
      if (!p) break;
      say(o, " waits in cray.get or cray.wait for ");
      next = producer(s, o, p, &busy);
    } else if (t->nresources && !t->holds_resources && state != CRAY__TASK_WAITING_DEPS) {
      say(o, " waits for resources that running tasks or living actors hold");
    } else if (state == CRAY__TASK_SUSPENDED || state == CRAY__TASK_WAITING_DEPS) {
      cray__entry *p = first_pending(t->deps, t->ndeps);
      if (!p) {
        say(o, " waits for its actor to restart");
        break;
      }
      say(o, " waits for its argument, ");
      next = producer(s, o, p, &busy);
    }
    t = next;
  }
  return !busy;
}

int cray__sched_wait(cray__sched *s, cray__entry *const *entries, size_t n, size_t want,
                     double timeout, unsigned char *ready, char *why, size_t whylen) {
  timeout = cray__timeout(timeout);
  if (timeout >= 0) return cray__wait_entries(s->store, entries, n, want, timeout, ready);
  double end = timeout < 0 ? -1 : cray__now() + timeout, slice = 0.05;
  uint64_t last = 0;
  int looked = 0, got;
  atomic_fetch_add_explicit(&s->drivers_waiting, 1, memory_order_relaxed); /* see quiet */
  for (;;) {
    double left = end < 0 ? slice : end - cray__now();
    if (left > slice) left = slice;
    got = cray__wait_entries(s->store, entries, n, want, left < 0 ? 0 : left, ready);
    if (got < 0 || (size_t)got >= want || (end >= 0 && cray__now() >= end)) break;
    uint64_t activity;
    int still = quiet(s, &activity);
    if (still && looked && activity == last) {
      out o = {why, whylen};
      cray__entry *e = first_pending(entries, n);
      int told = e && explain(s, e, &o);
      unlock_all(s);
      if (told) {
        got = CRAY_EDEADLOCK;
        break;
      }
    } else {
      unlock_all(s);
    }
    looked = still;
    last = activity;
    if (slice < 0.4) slice *= 2;
  }
  atomic_fetch_sub_explicit(&s->drivers_waiting, 1, memory_order_relaxed); /* see quiet */
  return got;
}
