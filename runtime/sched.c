/*
 * sched.c: see sched.h for the design and the lock order.
 *
 * A task's life here: submit subscribes it to its pending arguments (dep_waiter); the
 * last one to resolve queues it (on the submitting worker's queue, or round-robin from
 * other threads). A worker pops it, checks cancel, failed arguments and resources, and
 * hands it to the executor. A task that yields has armed a wait (wait_waiter, and a
 * timer for timeouts and sleeps); the first wake-up to flip `woken` posts it to its home
 * worker's inbox, which the worker drains before its queue. Spurious wake-ups are
 * harmless: the executor re-checks what it waits for and may suspend again.
 *
 * Shutdown sets `stopping`: from then on workers fail tasks instead of running or
 * resuming them, timers fire at once, and cray__sched_stop waits until every task
 * submitted has ended before joining the workers. A task that runs on without reaching a
 * wait is interrupted after a grace period, and again every period after: the executor
 * makes it raise `cancelled` (a Lua count hook), as a cancel does to a running task at
 * once. Each worker publishes the task it runs (`running`) for this.
 *
 * A task submitted by a running task is its child: the parent keeps a counted reference
 * to it in a list under its own spin lock (task.h) until it is done, so a recursive
 * cancel reaches the tasks its target started, and theirs.
 */
#include "sched.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "actor.h"
#include "alloc.h"
#include "cfunc.h"
#include "runtime.h"
#include "sched_internal.h"
#include "sites.h"
#include "trace.h"
#include "wait.h"

#define container_of(p, type, field) ((type *)((char *)(p) - offsetof(type, field)))

static _Thread_local worker *self_worker;

/* ---- queues ---- */

/* Publishes what w's queues hold; called under w->mu after each change. */
static void note_work(worker *w) {
  atomic_store_explicit(&w->work,
                        (w->qhead ? WORK_QUEUED : 0) | (w->ihead ? WORK_INBOX : 0) |
                            (w->rhead ? WORK_ACTORS : 0),
                        memory_order_relaxed);
}

void cray__sched_note_work(worker *w) { note_work(w); }

void cray__sched_poke(worker *w) {
  if (w->sleeping) pthread_cond_signal(&w->cv);
}

static void append(cray__task **head, cray__task **tail, cray__task *t) {
  t->next = NULL;
  if (*tail) (*tail)->next = t;
  else *head = t;
  *tail = t;
}

static cray__task *take(cray__task **head, cray__task **tail) {
  cray__task *t = *head;
  if (t && !(*head = t->next)) *tail = NULL;
  return t;
}

/* Wakes one sleeping worker other than `busy`, so it can steal. */
static void wake_thief(cray__sched *s, worker *busy) {
  if (atomic_load_explicit(&s->sleepers, memory_order_relaxed) == 0) return;
  for (int i = 0; i < s->n; i++) {
    worker *w = &s->workers[i];
    if (w == busy) continue;
    pthread_mutex_lock(&w->mu);
    int sleeping = w->sleeping;
    if (sleeping) pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (sleeping) return;
  }
}

static void push(cray__sched *s, worker *w, cray__task *t, int inbox) {
  pthread_mutex_lock(&w->mu);
  if (inbox) append(&w->ihead, &w->itail, t);
  else append(&w->qhead, &w->qtail, t);
  note_work(w);
  int sleeping = w->sleeping;
  if (sleeping) pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  if (!sleeping && !inbox) wake_thief(s, w);
}

static void enqueue(cray__sched *s, cray__task *t) {
  atomic_store_explicit(&t->state, CRAY__TASK_QUEUED, memory_order_relaxed);
  worker *w = self_worker && self_worker->s == s
                  ? self_worker
                  : &s->workers[atomic_fetch_add_explicit(&s->rr, 1, memory_order_relaxed) %
                                (unsigned)s->n];
  push(s, w, t, 0);
}

/* Posts t's resumption to its home worker, unless one is on its way already or t is
 * disarmed (task.h). The inbox holds a reference: a late wake (a timer that fired as the
 * task was resumed by what it waited for) may still be there when the task has finished;
 * resume() drops it then. */
static void wake(cray__sched *s, cray__task *t) {
  int expected = 0;
  /* acquire: `home` was written before the release that armed t */
  if (atomic_compare_exchange_strong_explicit(&t->woken, &expected, 1, memory_order_acquire,
                                              memory_order_relaxed)) {
    cray__task_retain(t);
    push(s, &s->workers[t->home], t, 1);
  }
}

/* Takes t out of the list head..tail; 1 when it was there. */
static int unlink_task(cray__task **head, cray__task **tail, cray__task *t) {
  cray__task *prev = NULL;
  for (cray__task *x = *head; x; prev = x, x = x->next) {
    if (x != t) continue;
    if (prev) prev->next = t->next;
    else *head = t->next;
    if (*tail == t) *tail = prev;
    return 1;
  }
  return 0;
}

/* Takes t out of w's inbox; 1 when it was there. Under w->mu. */
static int unlink_inbox(worker *w, cray__task *t) {
  if (!unlink_task(&w->ihead, &w->itail, t)) return 0;
  note_work(w);
  return 1;
}

void cray__sched_disarm(cray__sched *s, worker *w, cray__task *t) {
  t->disarmed = 1;
  /* acq_rel: a waker's claim (and its reading of `home`) is ordered before this */
  if (atomic_exchange_explicit(&t->woken, 1, memory_order_acq_rel) == 0) return;
  /* A wake claimed t first: its post to this inbox is there or a few instructions away. */
  for (;;) {
    pthread_mutex_lock(&w->mu);
    int found = unlink_inbox(w, t);
    pthread_mutex_unlock(&w->mu);
    if (found) break;
    sched_yield();
  }
  cray__task_release(s->store, t); /* the inbox's reference */
}

/* Homes t on w, which starts it, and lets wakes post it there. A task that was armed
 * already either is resumed here to start (an actor call) or is not suspended (parked
 * for resources), so no wake reads `home` while it is written; it is written only when
 * it changes all the same. */
static void arm(worker *w, cray__task *t) {
  if (t->home != w->index) t->home = w->index;
  if (!t->disarmed) return;
  t->disarmed = 0;
  /* release: publishes `home` to the waker that flips `woken` next */
  atomic_store_explicit(&t->woken, 0, memory_order_release);
}

void cray__sched_wake(cray__sched *s, cray__task *t) { wake(s, t); }

cray__io *cray__sched_io(cray__sched *s) { return s->io; }

/* ---- finishing ---- */

/* The calling thread's counts. */
static counts *my_counts(cray__sched *s) {
  return &s->counts[self_worker && self_worker->s == s ? self_worker->index + 1 : 0];
}

/* Adds v to the count x of c, the calling thread's counts. A worker's have one writer,
 * which adds with a load and a store, no locked instruction; the other threads share
 * slot 0, and add atomically. Relaxed: counts, each summed when read, ordered by no one. */
static void count_add(cray__sched *s, counts *c, _Atomic uint64_t *x, uint64_t v) {
  if (c == s->counts) atomic_fetch_add_explicit(x, v, memory_order_relaxed);
  else atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed) + v,
                             memory_order_relaxed);
}

void cray__sched_count_running(cray__sched *s, cray__task *t, int delta) {
  counts *c = my_counts(s);
  count_add(s, c, &c->running, (uint64_t)(int64_t)delta);
  t->started = delta > 0;
}

/* Counts the end of t, before its returns resolve: failed with `error` (which may be NULL
 * when memory was short), or finished with result_bytes. */
static void count_end(cray__sched *s, cray__task *t, int failed, const cray__blob *error,
                      size_t result_bytes) {
  counts *c = my_counts(s);
  if (t->started) count_add(s, c, &c->running, (uint64_t)-1);
  t->started = 0;
  count_add(s, c, failed ? &c->failed : &c->finished, 1);
  uint64_t now = cray__fstats_stamp();
  worker *w = c != s->counts ? &s->workers[c - s->counts - 1] : NULL;
  if (w && w->stretch == t) { /* its run's busy time ends here, on this stamp */
    cray__fstats_busy(s->fstats, w->index + 1, w->stretch_at, now);
    w->stretch = NULL;
  }
  if (w) w->ended = t, w->ended_at = now;
  cray__fstats_task_end(s->fstats, (int)(c - s->counts), t, failed, now);
  if (CRAY__TRACING()) cray__trace_end(t, failed, error, result_bytes, now);
}

void cray__sched_count_success(cray__task *t, size_t result_bytes) {
  count_end(t->sched, t, 0, NULL, result_bytes);
}

/* ---- children ---- */

static void kids_lock(cray__task *t) {
  /* Acquire: what the previous holder wrote to the list is seen. */
  while (atomic_exchange_explicit(&t->kids_lock, 1, memory_order_acquire)) cray__cpu_relax();
}

static void kids_unlock(cray__task *t) {
  /* Release: the list's changes are seen by the next holder. */
  atomic_store_explicit(&t->kids_lock, 0, memory_order_release);
}

static void release_kids(cray__sched *s, cray__task *list) {
  for (cray__task *next; list; list = next) {
    next = list->kid_next;
    cray__task_release(s->store, list);
  }
}

void cray__sched_adopt(cray__task *parent, cray__task *child) {
  cray__task *ended = NULL;
  kids_lock(parent);
  if (parent->nkids >= parent->kids_prune) {
    /* Children that ended leave the list, which so stays about the size of the living. */
    for (cray__task **p = &parent->kids; *p;) {
      cray__task *k = *p;
      if (atomic_load_explicit(&k->state, memory_order_relaxed) != CRAY__TASK_DONE) {
        p = &k->kid_next;
        continue;
      }
      *p = k->kid_next;
      k->kid_next = ended;
      ended = k;
      parent->nkids--;
    }
    parent->kids_prune = 2 * parent->nkids + 16;
  }
  cray__task_retain(child);
  child->kid_next = parent->kids;
  parent->kids = child;
  parent->nkids++;
  kids_unlock(parent);
  release_kids(parent->sched, ended);
}

/* t is done: it lets its children go. Only t's worker adds to the list, and t no longer
 * runs, so an empty list needs no lock. */
static void drop_kids(cray__sched *s, cray__task *t) {
  if (!t->kids) return;
  kids_lock(t);
  cray__task *list = t->kids;
  t->kids = NULL;
  t->nkids = 0;
  kids_unlock(t);
  release_kids(s, list);
}

/* References to t's children, in a new array (NULL when it has none or memory is short). */
static cray__task **take_kids(cray__task *t, uint32_t *n) {
  kids_lock(t);
  uint32_t cap = t->nkids;
  kids_unlock(t);
  *n = 0;
  cray__task **v = cap ? cray__malloc((cap + 16) * sizeof *v) : NULL;
  if (!v) return NULL;
  kids_lock(t);
  for (cray__task *k = t->kids; k && *n < cap + 16; k = k->kid_next) {
    cray__task_retain(k);
    v[(*n)++] = k;
  }
  kids_unlock(t);
  return v;
}

/* ---- finishing, continued ---- */

static void task_done(cray__sched *s, cray__task *t) {
  drop_kids(s, t);
  if (t->dispatched) cray__actor_call_end(s, t, NULL);
  atomic_store_explicit(&t->state, CRAY__TASK_DONE, memory_order_relaxed);
  cray__task_release(s->store, t);
}

static void drop_resources(cray__sched *s, cray__task *t);

static void fail(cray__sched *s, cray__task *t, cray__blob *error) {
  drop_resources(s, t);
  if (!error) error = cray__error_blob("out_of_memory", t->name, NULL, "no memory for the error");
  /* Relaxed: a flag and a count, read after the workers are joined. */
  if (atomic_load_explicit(&s->stopping, memory_order_relaxed))
    atomic_fetch_add_explicit(&s->stopped[t->actor != NULL], 1, memory_order_relaxed);
  if (t->dispatched) cray__actor_call_end(s, t, error);
  count_end(s, t, 1, error, 0);
  if (error) cray__task_fail(s->store, t, error);
  task_done(s, t);
}

void cray__sched_fail(cray__sched *s, cray__task *t, cray__blob *error) { fail(s, t, error); }

static void fail_cancelled(cray__sched *s, cray__task *t) {
  /* relaxed: it only picks the message; either is true of the task */
  int stopping = atomic_load_explicit(&s->stopping, memory_order_relaxed) &&
                 !atomic_load_explicit(&t->cancelled, memory_order_relaxed);
  fail(s, t,
       cray__error_blob("cancelled", t->name, NULL,
                        stopping ? "task '%s' was cancelled: the runtime shut down"
                                 : "task '%s' was cancelled",
                        t->name ? t->name : "?"));
}

/* ---- resources ---- */

static int fits(cray__sched *s, const cray__task *t) {
  for (int i = 0; i < t->nresources; i++)
    if (s->res_free[t->resources[i].index] < t->resources[i].amount) return 0;
  return 1;
}

/* Takes (sign 1) or gives back (sign -1) what need[0..n) asks for; under res_mu. */
static void take_resources(cray__sched *s, const cray__resource_need *need, int n, double sign) {
  for (int i = 0; i < n; i++) s->res_free[need[i].index] -= sign * need[i].amount;
}

/* Takes t's resources, or parks t until they are free: returns 1 when t may run. */
static int acquire(cray__sched *s, cray__task *t) {
  if (t->nresources == 0) return 1;
  pthread_mutex_lock(&s->res_mu);
  int ok = s->res_head == NULL && fits(s, t);
  /* Under res_mu: once parked, a release on another thread may start t and set it. */
  t->holds_resources = ok;
  if (ok) take_resources(s, t->resources, t->nresources, 1);
  else append(&s->res_head, &s->res_tail, t);
  pthread_mutex_unlock(&s->res_mu);
  return ok;
}

/* Starts tasks taken off the resource queue, in order: an actor's init, parked as
 * suspended, is woken on its home worker; other tasks are queued. */
static void start_parked(cray__sched *s, cray__task *list) {
  while (list) {
    cray__task *next = list->next;
    if (list->actor) wake(s, list);
    else enqueue(s, list);
    list = next;
  }
}

/* Gives resources back and starts the waiting tasks that now fit, in order. */
void cray__sched_release_resources(cray__sched *s, const cray__resource_need *need, int n) {
  cray__task *ready = NULL, *ready_tail = NULL;
  pthread_mutex_lock(&s->res_mu);
  take_resources(s, need, n, -1);
  while (s->res_head && fits(s, s->res_head)) {
    cray__task *next = take(&s->res_head, &s->res_tail);
    take_resources(s, next->resources, next->nresources, 1);
    next->holds_resources = 1;
    append(&ready, &ready_tail, next);
  }
  pthread_mutex_unlock(&s->res_mu);
  start_parked(s, ready);
}

static void release_resources(cray__sched *s, cray__task *t) {
  if (!t->holds_resources) return;
  t->holds_resources = 0;
  cray__sched_release_resources(s, t->resources, t->nresources);
}

void cray__sched_unpark(cray__sched *s, cray__task *t) {
  if (!t->nresources) return;
  pthread_mutex_lock(&s->res_mu);
  if (!t->holds_resources) unlink_task(&s->res_head, &s->res_tail, t);
  pthread_mutex_unlock(&s->res_mu);
}

/* t will not run on (it fails): off the resource queue, and what it holds given back (an
 * actor's init suspended in a wait, whose actor died or restarts). */
static void drop_resources(cray__sched *s, cray__task *t) {
  cray__sched_unpark(s, t);
  release_resources(s, t);
}

int cray__sched_resource(cray__sched *s, const char *name, double *capacity) {
  const cray_options *o = &s->rt->opts;
  for (int i = 0; i < o->nresources; i++) {
    if (strcmp(o->resource_names[i], name) == 0) {
      if (capacity) *capacity = o->resource_counts[i];
      return i;
    }
  }
  return -1;
}

void cray__sched_resources_free(cray__sched *s, double *out) {
  pthread_mutex_lock(&s->res_mu);
  memcpy(out, s->res_free, (size_t)s->nres * sizeof *out);
  pthread_mutex_unlock(&s->res_mu);
}

/* ---- running ---- */

/* Runs t with the executor, published as w's running task meanwhile. */
static int run(cray__sched *s, worker *w, cray__task *t) {
  /* Relaxed: published by the release of `running` below. */
  atomic_store_explicit(&w->running_site, t->site, memory_order_relaxed);
  atomic_store_explicit(&w->running_hi, t->id.hi, memory_order_relaxed);
  atomic_store_explicit(&w->running_lo, t->id.lo, memory_order_relaxed);
  /* Release: an interrupter that reads t there sees w->w too, and a stop that gives up
   * sees the site and id. */
  atomic_store_explicit(&w->running, t, memory_order_release);
  int rc = s->ex->run(w->w, t);
  /* Relaxed: an interrupt that comes late finds no cancelled task, and does nothing. */
  atomic_store_explicit(&w->running, NULL, memory_order_relaxed);
  return rc;
}

/* A worker's busy time is the time it runs tasks: from the stamp a stretch starts on to
 * the task's end (count_end adds it then, on the stamp it takes anyway, before the returns
 * resolve), or to the stretch's end when the task did not end in it (it waits). A stretch
 * nested in another (work run while a C function waits) puts the outer one back when it
 * ends, so the outer's busy time still runs from its own start. */
typedef struct stretch {
  const cray__task *t;
  uint64_t at;
} stretch;

static stretch busy_begin(worker *w, const cray__task *t, uint64_t t0) {
  stretch outer = {w->stretch, w->stretch_at};
  w->stretch = t;
  w->stretch_at = t0;
  return outer;
}

static void busy_end(cray__sched *s, worker *w, const cray__task *t, stretch outer) {
  if (w->stretch == t)
    cray__fstats_busy(s->fstats, w->index + 1, w->stretch_at, cray__fstats_stamp());
  w->stretch = outer.t;
  w->stretch_at = outer.at;
}

/* Interrupts the Lua code of task t where a worker runs it (t NULL: of every task). */
static void interrupt_running(cray__sched *s, const cray__task *t) {
  for (int i = 0; i < s->n; i++) {
    worker *w = &s->workers[i];
    /* Acquire: pairs with run()'s release. */
    cray__task *r = atomic_load_explicit(&w->running, memory_order_acquire);
    if (r && (!t || r == t)) s->ex->interrupt(w->w);
  }
}

static int deps_pending(const cray__task *t) {
  for (uint32_t i = 0; i < t->ndeps; i++)
    if (cray__entry_state(t->deps[i]) == CRAY__PENDING) return 1;
  return 0;
}

/* t's first failed argument, or NULL. */
static cray__entry *failed_dep(const cray__task *t, uint32_t *which) {
  for (uint32_t i = 0; i < t->ndeps; i++) {
    if (cray__entry_state(t->deps[i]) == CRAY__FAILED) {
      *which = t->dep_arg[i];
      return t->deps[i];
    }
  }
  return NULL;
}

static void after_run(cray__sched *s, worker *w, cray__task *t, int rc) {
  if (rc == CRAY__RUN_LOST) cray__actor_lost(s, w);
  if (rc == CRAY__RUN_LOST && t->actor) {
    /* It waits for its actor's restart, which sends it again or fails it (with t->error
     * when it has no retries left). */
    atomic_store_explicit(&t->state, CRAY__TASK_SUSPENDED, memory_order_release);
    return;
  }
  if (rc == CRAY__RUN_SUSPENDED) {
    /* A cancel may have come while the task ran: make sure it is noticed. seq_cst on the
     * store and the loads: cray__sched_cancel stores `cancelled` and then loads `state`,
     * so with a total order at least one side sees the other and wakes the task. */
    atomic_store_explicit(&t->state, CRAY__TASK_SUSPENDED, memory_order_seq_cst);
    if (atomic_load_explicit(&t->cancelled, memory_order_seq_cst) ||
        atomic_load_explicit(&s->stopping, memory_order_seq_cst))
      wake(s, t);
    if (t->actor) cray__actor_call_suspended(s, t);
    return;
  }
  if (t->is_init && rc == CRAY__RUN_DONE) cray__actor_keep_resources(t);
  t->raised = rc == CRAY__RUN_RAISED;
  release_resources(s, t);
  if (rc == CRAY__RUN_DONE) {
    task_done(s, t);
    return;
  }
  /* relaxed: a cancel or stop that comes later is caught when the retry starts */
  int retry = !t->actor && t->retries < t->max_retries &&
              !atomic_load_explicit(&t->cancelled, memory_order_relaxed) &&
              !atomic_load_explicit(&s->stopping, memory_order_relaxed) &&
              (rc == CRAY__RUN_LOST || t->retry_exceptions);
  if (retry) {
    cray__sched_disarm(s, w, t);
    cray__sched_count_running(s, t, -1);
    t->retries++;
    cray__blob_release(s->store, t->error);
    t->error = NULL;
    t->exec = NULL;
    t->home = -1;
    enqueue(s, t);
    return;
  }
  cray__blob *error = t->error;
  t->error = NULL;
  fail(s, t, error);
}

/* Starts t on w. `at`, when not 0, is a stamp w took with nothing run since (the end of
 * the call before, as cray__sched_start_call says): t starts on it instead of a stamp of
 * its own when t was submitted by then, so a batch of an actor's queued calls takes two
 * stamps a call, not three, and the time between two of them (the one's returns resolved,
 * the other taken from the mailbox) counts in the next's run and its worker's busy time. */
static void start(cray__sched *s, worker *w, cray__task *t, uint64_t at) {
  arm(w, t);
  /* seq_cst: as after a run, against cray__sched_cancel's store then load */
  if (atomic_load_explicit(&t->cancelled, memory_order_seq_cst) ||
      atomic_load_explicit(&s->stopping, memory_order_seq_cst)) {
    release_resources(s, t); /* held when it comes from the resource queue */
    fail_cancelled(s, t);
    return;
  }
  if (!w->w) { /* the executor could not make this worker's state */
    release_resources(s, t);
    fail(s, t,
         cray__error_blob("out_of_memory", t->name, NULL,
                          "task '%s' did not run: worker %d has no state to run it in (there "
                          "was no memory to make one)",
                          t->name ? t->name : "?", w->index));
    return;
  }
  uint32_t arg = 0;
  cray__entry *failed = failed_dep(t, &arg);
  if (failed) {
    release_resources(s, t);
    const char *name = t->name ? t->name : "?";
    cray__blob *cause; /* the failed argument's error, when it can be read back */
    int pinned = cray__store_pin(s->store, failed, &cause) == 0;
    if (!pinned) cause = NULL;
    cray__blob *error =
        arg == CRAY__DEP_FUNCTION
            ? cray__error_blob("task_error", t->name, cause,
                               "task '%s' did not run: its function could not be stored", name)
            : cray__error_blob("task_error", t->name, cause,
                               "task '%s' did not run: its argument %u failed", name, arg + 1);
    if (pinned) cray__store_unpin(failed);
    fail(s, t, error);
    return;
  }
  if (t->actor && deps_pending(t)) {
    /* The call keeps its slot while it waits, so later calls do not overtake it. */
    if (!t->dep_since) t->dep_since = cray__fstats_stamp();
    atomic_store_explicit(&t->state, CRAY__TASK_SUSPENDED, memory_order_release);
    if (cray__sched_wait_begin(s, t, t->deps, t->ndeps, t->ndeps, -1) != 0)
      fail(s, t, cray__error_blob("out_of_memory", t->name, NULL, "no memory to wait"));
    return;
  }
  if (t->dep_since) {
    uint64_t now = cray__fstats_stamp();
    t->dep_wait += now > t->dep_since ? now - t->dep_since : 0;
    t->dep_since = 0;
  }
  /* A task that comes from the resource queue holds its resources already. An actor's
   * init waits for them as suspended, to be woken on its home worker. */
  if (t->actor && t->nresources && !t->holds_resources)
    atomic_store_explicit(&t->state, CRAY__TASK_SUSPENDED, memory_order_release);
  if (!t->holds_resources && !acquire(s, t)) return;
  atomic_store_explicit(&t->state, CRAY__TASK_RUNNING, memory_order_relaxed);
  cray__sched_count_running(s, t, 1);
  /* A timeline's run slice ends on a stamp after the end's: there each run takes its own,
   * so that the slices of one worker do not overlap. */
  if (CRAY__TRACING() || t->submitted_at > at) at = 0;
  uint64_t t0 = t->started_at = at ? at : cray__fstats_stamp();
  stretch outer = busy_begin(w, t, t0);
  /* A C function runs here on the worker's thread; anything else goes to the executor. */
  int rc = t->actor ? -1 : cray__cfunc_run(s->rt, t);
  if (rc < 0) rc = run(s, w, t);
  busy_end(s, w, t, outer);
  if (CRAY__TRACING()) cray__trace_run(t, t0, cray__fstats_stamp(), rc);
  after_run(s, w, t, rc);
}

uint64_t cray__sched_start_call(cray__sched *s, worker *w, cray__task *t, uint64_t at) {
  start(s, w, t, at);
  return w->ended == t ? w->ended_at : 0;
}

static void resume(cray__sched *s, worker *w, cray__task *t) {
  if (atomic_load_explicit(&t->state, memory_order_acquire) != CRAY__TASK_SUSPENDED) return;
  /* release: the inbox's post is consumed; `home` is unchanged since it was armed */
  atomic_store_explicit(&t->woken, 0, memory_order_release);
  if (!t->exec && t->actor) {
    /* An actor call whose arguments were pending, or whose state was lost (then its
     * actor's restart takes it, and only a cancel or shutdown wakes it here). */
    cray__sched_wait_end(s, t);
    if (!t->started) start(s, w, t, 0);
    else if (atomic_load_explicit(&s->stopping, memory_order_seq_cst) || /* as in start */
             atomic_load_explicit(&t->cancelled, memory_order_seq_cst))
      fail_cancelled(s, t);
    return;
  }
  if (atomic_load_explicit(&s->stopping, memory_order_seq_cst) || /* as in start */
      atomic_load_explicit(&t->cancelled, memory_order_seq_cst)) {
    /* The executor drops what it holds; returns fail below. */
    cray__sched_wait_end(s, t);
    s->ex->drop(w->w, t);
    t->exec = NULL;
    release_resources(s, t);
    fail_cancelled(s, t);
    return;
  }
  atomic_store_explicit(&t->state, CRAY__TASK_RUNNING, memory_order_relaxed);
  uint64_t t0 = cray__fstats_stamp();
  stretch outer = busy_begin(w, t, t0);
  int rc = run(s, w, t);
  busy_end(s, w, t, outer);
  if (CRAY__TRACING()) cray__trace_run(t, t0, cray__fstats_stamp(), rc);
  after_run(s, w, t, rc);
}

/* Whether an idle worker should look again before it sleeps: it watches the queues'
 * work bits for up to WORKER_SPIN seconds, as the next task often comes sooner than a
 * sleeping worker could be woken, and a push to a worker that does not sleep costs no
 * wake-up. Returns 1 when there is something for w: in its own queues, or to steal. */
#define WORKER_SPIN 50e-6
static int spin(cray__sched *s, worker *w) {
  double end = cray__now() + WORKER_SPIN;
  do {
    for (int k = 0; k < 64; k++) {
      for (int i = 0; i < s->n; i++) {
        int work = atomic_load_explicit(&s->workers[i].work, memory_order_relaxed);
        if (work & (&s->workers[i] == w ? WORK_QUEUED | WORK_INBOX | WORK_ACTORS : WORK_QUEUED))
          return 1;
      }
      cray__cpu_relax();
    }
    sched_yield(); /* a thread with work to do may be waiting for this core */
  } while (cray__now() < end);
  return 0;
}

/* Takes a not-started task from another worker's queue. */
static cray__task *steal(cray__sched *s, worker *me) {
  for (int k = 1; k < s->n; k++) {
    worker *v = &s->workers[(me->index + k) % s->n];
    if (pthread_mutex_trylock(&v->mu) != 0) continue;
    cray__task *t = take(&v->qhead, &v->qtail);
    note_work(v);
    pthread_mutex_unlock(&v->mu);
    if (t) return t;
  }
  return NULL;
}

/* Whether w's ready list holds an actor listed for calls, not only for control (a
 * collection, a kill), among its first few: then w has more than one actor to serve,
 * counting the one it popped. Under w->mu. */
static int calls_listed(const worker *w) {
  int k = 0;
  for (const cray__actor *a = w->rhead; a && k < 4; a = a->rnext, k++)
    /* relaxed: set under w->mu, which is held */
    if (!atomic_load_explicit(&a->ctl, memory_order_relaxed) && a->state == CRAY__ACTOR_ALIVE)
      return 1;
  return 0;
}

/* A worker asleep with nothing queued, to give one of w's ready actors to (w has another
 * ready to serve), or NULL. w->mu is held: the others are only tried. */
static worker *idle_worker(cray__sched *s, worker *w) {
  /* relaxed: a hint; the worker's own fields are read under its lock */
  if (!atomic_load_explicit(&s->sleepers, memory_order_relaxed)) return NULL;
  for (int k = 1; k < s->n; k++) {
    worker *v = &s->workers[(w->index + k) % s->n];
    if (pthread_mutex_trylock(&v->mu) != 0) continue;
    int idle = v->sleeping && !v->rhead && !v->ihead && !v->qhead;
    pthread_mutex_unlock(&v->mu);
    if (idle) return v;
  }
  return NULL;
}

/* Runs one piece of w's work, in the order a worker takes it: a resumption from its
 * inbox, a ready actor, a task from its queue, or one stolen. 0 when there was none. */
static int run_one(cray__sched *s, worker *w) {
  pthread_mutex_lock(&w->mu);
  cray__actor_list_local(w);
  cray__task *t = take(&w->ihead, &w->itail);
  if (t) {
    note_work(w);
    pthread_mutex_unlock(&w->mu);
    resume(s, w, t);
    cray__task_release(s->store, t); /* the inbox's reference */
    return 1;
  }
  if (w->rhead) {
    cray__actor *a = w->rhead;
    if (!(w->rhead = a->rnext)) w->rtail = NULL;
    note_work(w);
    /* Not while nested in a wait: packing an instance wants the state at rest. */
    worker *to = !w->depth && calls_listed(w) ? idle_worker(s, w) : NULL;
    if (to && cray__actor_move(s, w, a, to)) return 1;
    cray__actor_serve(s, w, a); /* unlocks w->mu */
    return 1;
  }
  t = take(&w->qhead, &w->qtail);
  note_work(w);
  pthread_mutex_unlock(&w->mu);
  if (!t && !(t = steal(s, w))) return 0;
  start(s, w, t, 0);
  return 1;
}

static void *worker_main(void *arg) {
  worker *w = arg;
  cray__sched *s = w->s;
  self_worker = w;
  cray__trace_thread(CRAY__TRACE_WORKER, w->index);
  w->w = s->ex->worker_open(s->ctx, w->index);
  for (;;) {
    /* acquire: pairs with cray__sched_stop's store; what it did before shows here */
    if (!w->actors_shut && atomic_load_explicit(&s->stopping, memory_order_acquire)) {
      w->actors_shut = 1;
      cray__actor_shutdown(w);
    }
    if (run_one(s, w) || spin(s, w)) continue;
    /* Re-check under the lock: a push after the look above signals us. */
    pthread_mutex_lock(&w->mu);
    if (!w->ihead && !w->qhead && !w->rhead) {
      /* relaxed: set before signal_all takes w->mu, which is held here */
      if (atomic_load_explicit(&s->exiting, memory_order_relaxed)) {
        pthread_mutex_unlock(&w->mu);
        break;
      }
      w->sleeping = 1;
      /* relaxed: a hint for wake_thief, which checks `sleeping` under w->mu */
      atomic_fetch_add_explicit(&s->sleepers, 1, memory_order_relaxed);
      pthread_cond_wait(&w->cv, &w->mu);
      atomic_fetch_sub_explicit(&s->sleepers, 1, memory_order_relaxed);
      w->sleeping = 0;
    }
    pthread_mutex_unlock(&w->mu);
  }
  if (w->w) s->ex->worker_close(s->ctx, w->w);
  self_worker = NULL;
  cray__thread_done();
  return NULL;
}

/* How deep a worker nests the work it runs while a C function on it waits, and how long
 * that wait sleeps between looks for work (work pushed to other workers wakes them, not
 * this one). */
#define HELP_DEPTH 64
#define HELP_SLICE 2e-3

/* Takes t off the run queue it sits in; 0 when it is in none (started, or parked). */
static int take_queued(cray__sched *s, cray__task *t) {
  for (int i = 0; i < s->n; i++) {
    worker *v = &s->workers[i];
    pthread_mutex_lock(&v->mu);
    int found = unlink_task(&v->qhead, &v->qtail, t);
    if (found) note_work(v);
    pthread_mutex_unlock(&v->mu);
    if (found) return 1;
  }
  return 0;
}

static void retain_producer(void *producer, void *out);

/* Runs, here and now, the task that will resolve e when it is queued and not started:
 * waiting for a result first runs what makes it, so nesting follows the calls' own depth. */
static int run_producer(cray__sched *s, worker *w, cray__entry *e) {
  cray__task *t = NULL;
  if (!cray__store_with_producer(s->store, e, retain_producer, &t)) return 0;
  /* relaxed: a hint only; taking it off a queue under that queue's lock decides */
  int ran = atomic_load_explicit(&t->state, memory_order_relaxed) == CRAY__TASK_QUEUED &&
            !t->actor && take_queued(s, t);
  if (ran) start(s, w, t, 0); /* the queue's reference goes with it */
  cray__task_release(s->store, t);
  return ran;
}

int cray__sched_wait_helping(cray__sched *s, cray__entry *const *entries, size_t n, size_t want,
                             double timeout, unsigned char *ready) {
  worker *w = self_worker;
  double deadline = timeout < 0 ? -1 : cray__now() + timeout;
  for (;;) {
    int got = cray__wait_entries(s->store, entries, n, want, 0, ready);
    if (got < 0 || (size_t)got >= want) return got;
    double left = deadline < 0 ? HELP_SLICE : deadline - cray__now();
    if (left <= 0) return got;
    if (w->depth < HELP_DEPTH) {
      int ran = 0;
      w->depth++;
      for (size_t i = 0; i < n && !ran; i++) ran = !ready[i] && run_producer(s, w, entries[i]);
      if (!ran) ran = run_one(s, w);
      w->depth--;
      if (ran) continue;
    }
    if (w->lhead) { /* too deep to look for work: what this thread's sends found idle waits
                       for no look of its own */
      pthread_mutex_lock(&w->mu);
      cray__actor_list_local(w);
      pthread_mutex_unlock(&w->mu);
    }
    got = cray__wait_entries(s->store, entries, n, want, left < HELP_SLICE ? left : HELP_SLICE,
                             ready);
    if (got < 0 || (size_t)got >= want) return got;
  }
}

/* ---- submitting ---- */

static void dep_resolved(cray__waiter *wt) {
  cray__task *t = container_of(wt, cray__task, dep_waiter);
  /* acq_rel: the last count down queues the task after every other resolution */
  if (atomic_fetch_sub_explicit(&t->deps_left, 1, memory_order_acq_rel) == 1) {
    uint64_t now = cray__fstats_stamp(); /* the queue's lock hands dep_wait to the worker */
    t->dep_wait = now > t->submitted_at ? now - t->submitted_at : 0;
    if (CRAY__TRACING()) cray__trace_release(t);
    enqueue(t->sched, t);
  }
}

void cray__sched_count_submit(cray__sched *s, cray__task *t) {
  t->sched = s;
  t->submitted_at = cray__fstats_stamp();
  counts *c = my_counts(s);
  count_add(s, c, &c->submitted, 1);
  /* The site names the returns' objects, and the task in a stop that gives up on it: a
   * call without returns (a one-way actor call) skips the interning, and goes unnamed
   * unless its sender interned its name already (bindings/actor.c). */
  if (!t->site && t->nreturns) t->site = cray__sites_intern(s->rt->sites, t->name);
  uint32_t site = t->site;
  for (uint32_t i = 0; i < t->nreturns; i++) {
    cray__store_set_producer(s->store, t->returns[i], t);
    /* relaxed: shown by cray.objects() only; the site's text is published by interning */
    atomic_store_explicit(&t->returns[i]->site, site, memory_order_relaxed);
  }
  if (CRAY__TRACING()) cray__trace_submit(t, s->rt->ids.nonce, site);
}

void cray__sched_submit(cray__sched *s, cray__task *t) {
  cray__sched_count_submit(s, t);
  if (t->actor) {
    cray__actor_send(s, t);
    return;
  }
  t->dep_waiter.wake = dep_resolved;
  if (t->ndeps == 0) {
    enqueue(s, t);
    return;
  }
  atomic_store_explicit(&t->state, CRAY__TASK_WAITING_DEPS, memory_order_relaxed);
  /* One extra count while subscribing, so the task cannot be queued halfway through. */
  /* relaxed: no one else sees the task before it subscribes below, under shard locks */
  atomic_store_explicit(&t->deps_left, t->ndeps + 1, memory_order_relaxed);
  uint32_t ready = 1;
  for (uint32_t i = 0; i < t->ndeps; i++) {
    t->dep_nodes[i].waiter = &t->dep_waiter;
    if (cray__store_subscribe(s->store, t->deps[i], &t->dep_nodes[i]) != 0) ready++;
  }
  if (atomic_fetch_sub_explicit(&t->deps_left, ready, memory_order_acq_rel) == ready)
    enqueue(s, t); /* acq_rel: as in dep_resolved */
}

int cray__sched_worker_index(cray__sched *s) {
  return self_worker && self_worker->s == s ? self_worker->index : -1;
}

/* seq_cst: as the scheduler's own checks against cray__sched_cancel and _stop */
int cray__sched_stopping(cray__sched *s) {
  return atomic_load_explicit(&s->stopping, memory_order_seq_cst);
}

/* ---- waits ---- */

static void wait_resolved(cray__waiter *wt) {
  cray__task *t = container_of(wt, cray__task, wait_waiter);
  /* acq_rel: the resolution that completes the count wakes the task after the others */
  if (atomic_fetch_add_explicit(&t->fired, 1, memory_order_acq_rel) + 1 >= t->want)
    wake(t->sched, t);
}

static void timer_fired(void *arg, int why) {
  cray__task *t = arg;
  if (why != CRAY__TIMER_CANCELLED) wake(t->sched, t);
  cray__task_release(t->sched->store, t);
}

int cray__sched_wait_begin(cray__sched *s, cray__task *t, cray__entry *const *entries, size_t n,
                           size_t want, double timeout) {
  timeout = cray__timeout(timeout);
  t->wait_waiter.wake = wait_resolved;
  atomic_store_explicit(&t->fired, 0, memory_order_relaxed); /* before any subscription */
  t->want = want;
  t->nwait = 0;
  t->timer = NULL;
  if (n) {
    t->wait_nodes = cray__malloc(n * sizeof *t->wait_nodes);
    t->wait_entries = cray__malloc(n * sizeof *t->wait_entries);
    if (!t->wait_nodes || !t->wait_entries) {
      cray__free(t->wait_nodes);
      cray__free(t->wait_entries);
      t->wait_nodes = NULL, t->wait_entries = NULL;
      return CRAY_ENOMEM;
    }
    /* The wait holds its entries: the refs that hold them for the task die with its state
     * when that is rebuilt, before the task learns it was lost and unsubscribes. */
    for (size_t i = 0; i < n; i++) cray__store_retain(t->wait_entries[i] = entries[i]);
    t->nwait = n;
  }
  if (timeout >= 0) {
    cray__task_retain(t);
    if (!(t->timer = cray__timer_add(s->timers, timeout, timer_fired, t))) {
      cray__task_release(s->store, t);
      for (size_t i = 0; i < n; i++) cray__store_release(s->store, t->wait_entries[i]);
      cray__free(t->wait_nodes), cray__free(t->wait_entries);
      t->wait_nodes = NULL, t->wait_entries = NULL, t->nwait = 0;
      return CRAY_ENOMEM;
    }
  }
  size_t already = 0;
  for (size_t i = 0; i < n; i++) {
    t->wait_nodes[i].waiter = &t->wait_waiter;
    if (cray__store_subscribe(s->store, entries[i], &t->wait_nodes[i]) != 0) {
      t->wait_nodes[i].waiter = NULL; /* not subscribed */
      already++;
    }
  }
  if (already && /* acq_rel: as in wait_resolved */
      atomic_fetch_add_explicit(&t->fired, already, memory_order_acq_rel) + already >= want)
    wake(s, t);
  return 0;
}

void cray__sched_wait_end(cray__sched *s, cray__task *t) {
  for (size_t i = 0; i < t->nwait; i++) {
    if (t->wait_nodes[i].waiter) cray__store_unsubscribe(s->store, t->wait_entries[i], &t->wait_nodes[i]);
    cray__store_release(s->store, t->wait_entries[i]);
  }
  cray__free(t->wait_nodes);
  cray__free(t->wait_entries);
  t->wait_nodes = NULL;
  t->wait_entries = NULL;
  t->nwait = 0;
  if (t->timer) cray__timer_cancel(s->timers, t->timer);
  t->timer = NULL;
}

/* ---- cancel ---- */

static void retain_producer(void *producer, void *out) {
  cray__task_retain(producer);
  *(cray__task **)out = producer;
}

static void cancel_task(cray__sched *s, cray__task *t, int recursive) {
  /* Its children are taken first: once woken below, t can end on another worker and let
   * them go before this thread would look. */
  uint32_t n = 0;
  cray__task **kids = recursive ? take_kids(t, &n) : NULL;
  /* seq_cst: a store then a load, against after_run's and start's (see there) */
  atomic_store_explicit(&t->cancelled, 1, memory_order_seq_cst);
  switch (atomic_load_explicit(&t->state, memory_order_seq_cst)) {
    case CRAY__TASK_WAITING_DEPS:
      /* Queue it now (it fails when popped); later dep wakes count below zero, harmless. */
      if (atomic_exchange_explicit(&t->deps_left, 0, memory_order_acq_rel) > 0) /* as above */
        enqueue(s, t);
      break;
    case CRAY__TASK_SUSPENDED:
      wake(s, t);
      break;
    case CRAY__TASK_RUNNING: {
      interrupt_running(s, t); /* and it fails at its next wait, if it gets there first */
      /* Its returns fail now, as they will when it ends: the caller need not wait for a
       * task that cannot be interrupted (a loop LuaJIT compiled, a long C call), which
       * runs on, holding its worker. Its own resolutions later find them resolved. A
       * streaming task's return failing ends its consumer's iteration after the items
       * already there. */
      cray__blob *e = cray__error_blob("cancelled", t->name, NULL,
                                       "task '%s' was cancelled while it ran",
                                       t->name ? t->name : "?");
      if (e) cray__task_fail(s->store, t, e);
      break;
    }
    default:
      break; /* queued: fails when popped */
  }
  for (uint32_t i = 0; i < n; i++) {
    /* Relaxed: a child that ends meanwhile is cancelled for nothing, harmlessly. */
    if (atomic_load_explicit(&kids[i]->state, memory_order_relaxed) != CRAY__TASK_DONE)
      cancel_task(s, kids[i], 1);
    cray__task_release(s->store, kids[i]);
  }
  cray__free(kids);
}

int cray__sched_cancel(cray__sched *s, cray__entry *e, int recursive) {
  cray__task *t = NULL;
  if (!cray__store_with_producer(s->store, e, retain_producer, &t)) return 0;
  cancel_task(s, t, recursive);
  cray__task_release(s->store, t);
  return 1;
}

/* ---- giving work to other ranks ---- */

int cray__sched_idle(cray__sched *s) {
  /* relaxed: a hint; a rank that looks idle and is not only asks for work too soon */
  return atomic_load_explicit(&s->sleepers, memory_order_relaxed) == s->n;
}

int cray__sched_give(cray__sched *s, cray__task **out, int max,
                     int (*may_move)(void *ctx, cray__task *t), void *ctx) {
  int n = 0;
  for (int i = 0; i < s->n && n < max; i++) {
    worker *w = &s->workers[i];
    pthread_mutex_lock(&w->mu);
    cray__task **pp = &w->qhead, *prev = NULL;
    while (*pp && n < max) {
      cray__task *t = *pp;
      /* A task the resource queue started holds this rank's units: it runs here, or
       * they would never come back. */
      if (t->actor || t->placed || t->holds_resources || atomic_load(&t->cancelled) ||
          !may_move(ctx, t)) {
        prev = t;
        pp = &t->next;
        continue;
      }
      *pp = t->next;
      if (w->qtail == t) w->qtail = prev;
      t->next = NULL;
      out[n++] = t;
    }
    note_work(w);
    pthread_mutex_unlock(&w->mu);
  }
  counts *c = my_counts(s);
  count_add(s, c, &c->submitted, -(uint64_t)n);
  return n;
}

/* ---- start, stop, stats ---- */

static void signal_all(cray__sched *s) {
  for (int i = 0; i < s->n; i++) {
    worker *w = &s->workers[i];
    pthread_mutex_lock(&w->mu);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
  }
}

/* Ends the first n workers, which have no task left, and frees s. */
static void join_and_free(cray__sched *s, int n) {
  atomic_store_explicit(&s->exiting, 1, memory_order_relaxed); /* read under w->mu */
  signal_all(s);
  for (int i = 0; i < n; i++) pthread_join(s->workers[i].thread, NULL);
  cray__store_on_actor_gone(s->store, NULL, NULL);
  /* The services first: a timer or a socket still armed holds a task, which its thread
   * releases as it stops, and releasing an actor's call updates its actor. */
  cray__io_stop(s->io);
  cray__timers_stop(s->timers);
  cray__actor_free_all(s);
  for (int i = 0; i < s->n; i++) {
    pthread_mutex_destroy(&s->workers[i].mu);
    pthread_cond_destroy(&s->workers[i].cv);
  }
  pthread_mutex_destroy(&s->res_mu);
  cray__free(s->workers);
  cray__free(s->counts);
  cray__fstats_free(s->fstats);
  cray__free(s->res_free);
  cray__free(s);
}

int cray__sched_start(cray__sched **out, cray_runtime *rt, const cray__executor *ex, void *ctx) {
  cray__sched *s = cray__calloc(1, sizeof *s);
  if (!s) return CRAY_ENOMEM;
  s->rt = rt;
  s->store = rt->store;
  s->ex = ex;
  s->ctx = ctx;
  s->n = rt->opts.workers;
  s->nres = rt->opts.nresources;
  s->workers = cray__calloc_lines((size_t)s->n, sizeof *s->workers);
  s->counts = cray__calloc_lines((size_t)s->n + 1, sizeof *s->counts);
  s->res_free = cray__calloc((size_t)(s->nres ? s->nres : 1), sizeof *s->res_free);
  s->fstats = cray__fstats_new(s->n);
  int rc = s->workers && s->counts && s->res_free && s->fstats ? cray__timers_start(&s->timers)
                                                               : CRAY_ENOMEM;
  if (rc == 0 && (rc = cray__io_start(&s->io, s->timers, s, s->store)) != 0)
    cray__timers_stop(s->timers);
  if (rc) {
    cray__fstats_free(s->fstats);
    cray__free(s->workers);
    cray__free(s->counts);
    cray__free(s->res_free);
    cray__free(s);
    return rc;
  }
  for (int i = 0; i < s->nres; i++) s->res_free[i] = rt->opts.resource_counts[i];
  pthread_mutex_init(&s->res_mu, NULL);
  for (int i = 0; i < s->n; i++) {
    worker *w = &s->workers[i];
    w->index = i;
    w->s = s;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
  }
  cray__actor_names_init(&s->names);
  cray__store_on_actor_gone(s->store, cray__actor_gone, s);
  int started = 0;
  while (started < s->n && cray__thread_start(&s->workers[started].thread, worker_main,
                                              &s->workers[started]) == 0)
    started++;
  if (started < s->n) {
    /* No task was submitted yet: the workers that started end at once. */
    atomic_store_explicit(&s->stopping, 1, memory_order_seq_cst); /* as in cray__sched_stop */
    join_and_free(s, started);
    return CRAY_ESYS;
  }
  *out = s;
  return 0;
}

/* Seconds a running task has to reach a wait once the runtime stops, before it is
 * interrupted (and between interrupts, for a task that catches the error). */
#define STOP_GRACE 0.2

static void begin_stop(cray__sched *s) {
  atomic_store_explicit(&s->stopping, 1, memory_order_seq_cst); /* see after_run, start */
  cray__timers_flush(s->timers);
  cray__io_flush(s->io);
  /* Tasks parked for resources fail as cancelled. */
  pthread_mutex_lock(&s->res_mu);
  cray__task *parked = s->res_head;
  s->res_head = s->res_tail = NULL;
  pthread_mutex_unlock(&s->res_mu);
  start_parked(s, parked);
  signal_all(s);
}

void cray__sched_interrupt(cray__sched *s) {
  begin_stop(s);
  interrupt_running(s, NULL);
}

/* Names the tasks the workers run now in buf[0..n): "task 'f' (id HEX, worker 1), ...".
 * It reads what run() published beside `running`, never a task, which may end meanwhile
 * (a task that starts as it reads may be named by a mix of two: a report, not a fact). */
static void describe_running(cray__sched *s, char *buf, size_t n) {
  size_t at = 0;
  if (n) buf[0] = 0;
  for (int i = 0; i < s->n && at < n; i++) {
    worker *w = &s->workers[i];
    /* Acquire: pairs with run()'s release; the relaxed loads below read what it published. */
    if (!atomic_load_explicit(&w->running, memory_order_acquire)) continue;
    cray_id id = {atomic_load_explicit(&w->running_hi, memory_order_relaxed),
                  atomic_load_explicit(&w->running_lo, memory_order_relaxed)};
    const char *name = cray__sites_name(
        s->rt->sites, atomic_load_explicit(&w->running_site, memory_order_relaxed));
    char hex[33];
    cray_id_format(&id, hex);
    int k = snprintf(buf + at, n - at, "%stask '%s' (id %s, worker %d)", at ? ", " : "",
                     name ? name : "?", hex, i);
    if (k < 0) break;
    at += (size_t)k;
  }
}

int cray__sched_stop(cray__sched *s, uint64_t *tasks, uint64_t *calls, double timeout,
                     char *stuck, size_t n) {
  begin_stop(s);
  /* Ends are read before submissions (cray__sched_stats_get): a task counted as ended
   * was submitted before, so equal counts mean nothing was alive when the ends were read,
   * and nothing came since. */
  double began = cray__now(), interrupt_at = began + STOP_GRACE;
  for (;;) {
    cray__sched_stats st;
    cray__sched_stats_get(s, &st);
    if (st.finished + st.failed >= st.submitted) break;
    if (timeout >= 0 && cray__now() - began >= timeout) {
      describe_running(s, stuck, n);
      uint64_t left = st.submitted - st.finished - st.failed;
      return left < INT_MAX ? (int)left : INT_MAX;
    }
    if (cray__now() >= interrupt_at) {
      interrupt_running(s, NULL);
      interrupt_at = cray__now() + STOP_GRACE;
    }
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  if (tasks) *tasks = atomic_load_explicit(&s->stopped[0], memory_order_relaxed);
  if (calls) *calls = atomic_load_explicit(&s->stopped[1], memory_order_relaxed);
  join_and_free(s, s->n);
  return 0;
}

void cray__sched_stats_get(cray__sched *s, cray__sched_stats *out) {
  uint64_t finished = 0, failed = 0, submitted = 0;
  int64_t running = 0;
  for (int i = 0; i <= s->n; i++) {
    /* relaxed: counters for cray.stats, each exact on its own; no ordering needed */
    finished += atomic_load_explicit(&s->counts[i].finished, memory_order_relaxed);
    failed += atomic_load_explicit(&s->counts[i].failed, memory_order_relaxed);
    running += (int64_t)atomic_load_explicit(&s->counts[i].running, memory_order_relaxed);
  }
  for (int i = 0; i <= s->n; i++) /* relaxed, as above */
    submitted += atomic_load_explicit(&s->counts[i].submitted, memory_order_relaxed);
  out->submitted = submitted;
  out->running = running > 0 ? (uint64_t)running : 0;
  out->finished = finished;
  out->failed = failed;
}

/* relaxed: a count for cray.stats */
uint64_t cray__sched_actors_alive(cray__sched *s) {
  return atomic_load_explicit(&s->actors_alive, memory_order_relaxed);
}

cray__fstats *cray__sched_fstats(cray__sched *s) { return s->fstats; }
