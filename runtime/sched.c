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
 * resuming them, timers fire at once, and cray__sched_stop waits until every task is done
 * (`live` reaches zero) before joining the workers.
 */
#include "sched.h"

#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>

#include "alloc.h"
#include "runtime.h"
#include "wait.h"

#define container_of(p, type, field) ((type *)((char *)(p) - offsetof(type, field)))

typedef struct worker {
  pthread_t thread;
  int index;
  cray__sched *s;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  cray__task *qhead, *qtail;  /* not started */
  cray__task *ihead, *itail;  /* resumptions */
  int sleeping;
  _Atomic int work;           /* WORK_* bits: what the queues hold, for spinning workers to
                                 read without the lock; written under it (note_work) */
  void *w;                    /* the executor's state */
  char pad[64];
} worker;

struct cray__sched {
  cray_runtime *rt;
  cray__store *store;
  const cray__executor *ex;
  void *ctx;
  cray__timers *timers;
  int n;
  worker *workers;
  _Atomic unsigned rr;
  _Atomic int sleepers;
  _Atomic int stopping;
  _Atomic int exiting;

  pthread_mutex_t live_mu;
  pthread_cond_t live_cv;
  _Atomic uint64_t live;

  pthread_mutex_t res_mu;
  int nres;
  double *res_free;
  cray__task *res_head, *res_tail; /* waiting for resources, in order */

  _Atomic uint64_t submitted, finished, failed;
  _Atomic int64_t running;
};

static _Thread_local worker *self_worker;

/* ---- queues ---- */

enum { WORK_QUEUED = 1, WORK_INBOX = 2 };

/* Publishes what w's queues hold; called under w->mu after each change. */
static void note_work(worker *w) {
  atomic_store_explicit(&w->work, (w->qhead ? WORK_QUEUED : 0) | (w->ihead ? WORK_INBOX : 0),
                        memory_order_relaxed);
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

/* Posts t's resumption to its home worker, unless one is on its way already. The inbox
 * holds a reference: a late wake (a timer that fired as the task was resumed by what it
 * waited for) may still be there when the task has finished; resume() drops it then. */
static void wake(cray__sched *s, cray__task *t) {
  int expected = 0;
  if (atomic_compare_exchange_strong(&t->woken, &expected, 1)) {
    cray__task_retain(t);
    push(s, &s->workers[t->home], t, 1);
  }
}

/* ---- finishing ---- */

/* Counts the end of t, before its returns resolve. */
static void count_end(cray__sched *s, cray__task *t, int failed) {
  if (t->started) atomic_fetch_sub_explicit(&s->running, 1, memory_order_relaxed);
  t->started = 0;
  atomic_fetch_add_explicit(failed ? &s->failed : &s->finished, 1, memory_order_relaxed);
}

void cray__sched_count_success(cray__task *t) { count_end(t->sched, t, 0); }

/* Only cray__sched_stop waits for `live` to reach zero, after it set `stopping`: both are
 * sequentially consistent, so either this sees `stopping` and signals, or the stopper,
 * which reads `live` under live_mu, sees zero. */
static void task_done(cray__sched *s, cray__task *t) {
  atomic_store_explicit(&t->state, CRAY__TASK_DONE, memory_order_relaxed);
  cray__task_release(s->store, t);
  if (atomic_fetch_sub(&s->live, 1) == 1 && atomic_load(&s->stopping)) {
    pthread_mutex_lock(&s->live_mu);
    pthread_cond_broadcast(&s->live_cv);
    pthread_mutex_unlock(&s->live_mu);
  }
}

static void fail(cray__sched *s, cray__task *t, cray__blob *error) {
  if (!error) error = cray__error_blob("out_of_memory", t->name, NULL, "no memory for the error");
  count_end(s, t, 1);
  if (error) cray__task_fail(s->store, t, error);
  task_done(s, t);
}

static void fail_cancelled(cray__sched *s, cray__task *t) {
  int stopping = atomic_load(&s->stopping) && !atomic_load(&t->cancelled);
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

static void take_resources(cray__sched *s, cray__task *t, double sign) {
  for (int i = 0; i < t->nresources; i++)
    s->res_free[t->resources[i].index] -= sign * t->resources[i].amount;
}

/* Takes t's resources, or parks t until they are free: returns 1 when t may run. */
static int acquire(cray__sched *s, cray__task *t) {
  if (t->nresources == 0) return 1;
  pthread_mutex_lock(&s->res_mu);
  int ok = s->res_head == NULL && fits(s, t);
  if (ok) take_resources(s, t, 1);
  else append(&s->res_head, &s->res_tail, t);
  pthread_mutex_unlock(&s->res_mu);
  t->holds_resources = ok;
  return ok;
}

/* Gives t's resources back and queues the waiting tasks that now fit, in order. */
static void release_resources(cray__sched *s, cray__task *t) {
  if (!t->holds_resources) return;
  t->holds_resources = 0;
  cray__task *ready = NULL, *ready_tail = NULL;
  pthread_mutex_lock(&s->res_mu);
  take_resources(s, t, -1);
  while (s->res_head && fits(s, s->res_head)) {
    cray__task *next = take(&s->res_head, &s->res_tail);
    take_resources(s, next, 1);
    next->holds_resources = 1;
    append(&ready, &ready_tail, next);
  }
  pthread_mutex_unlock(&s->res_mu);
  while (ready) {
    cray__task *next = ready->next;
    enqueue(s, ready);
    ready = next;
  }
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

/* ---- running ---- */

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

static void after_run(cray__sched *s, cray__task *t, int rc) {
  if (rc == CRAY__RUN_SUSPENDED) {
    atomic_store_explicit(&t->state, CRAY__TASK_SUSPENDED, memory_order_release);
    /* A cancel may have come while the task ran: make sure it is noticed. */
    if (atomic_load(&t->cancelled) || atomic_load(&s->stopping)) wake(s, t);
    return;
  }
  release_resources(s, t);
  if (rc == CRAY__RUN_DONE) {
    task_done(s, t);
    return;
  }
  int retry = t->retries < t->max_retries && !atomic_load(&t->cancelled) &&
              !atomic_load(&s->stopping) && (rc == CRAY__RUN_LOST || t->retry_exceptions);
  if (retry) {
    atomic_fetch_sub_explicit(&s->running, 1, memory_order_relaxed);
    t->started = 0;
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

static void start(cray__sched *s, worker *w, cray__task *t) {
  if (atomic_load(&t->cancelled) || atomic_load(&s->stopping)) {
    release_resources(s, t); /* held when it comes from the resource queue */
    fail_cancelled(s, t);
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
  /* A task that comes from the resource queue holds its resources already. */
  if (!t->holds_resources && !acquire(s, t)) return;
  t->home = w->index;
  atomic_store_explicit(&t->state, CRAY__TASK_RUNNING, memory_order_relaxed);
  atomic_fetch_add_explicit(&s->running, 1, memory_order_relaxed);
  t->started = 1;
  after_run(s, t, s->ex->run(w->w, t));
}

static void resume(cray__sched *s, worker *w, cray__task *t) {
  if (atomic_load_explicit(&t->state, memory_order_acquire) != CRAY__TASK_SUSPENDED) return;
  atomic_store_explicit(&t->woken, 0, memory_order_relaxed);
  if (atomic_load(&s->stopping) || atomic_load(&t->cancelled)) {
    /* The executor drops what it holds; returns fail below. */
    cray__sched_wait_end(s, t);
    s->ex->drop(w->w, t);
    t->exec = NULL;
    release_resources(s, t);
    fail_cancelled(s, t);
    return;
  }
  atomic_store_explicit(&t->state, CRAY__TASK_RUNNING, memory_order_relaxed);
  after_run(s, t, s->ex->run(w->w, t));
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
        if (work & (&s->workers[i] == w ? WORK_QUEUED | WORK_INBOX : WORK_QUEUED)) return 1;
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

static void *worker_main(void *arg) {
  worker *w = arg;
  cray__sched *s = w->s;
  self_worker = w;
  w->w = s->ex->worker_open(s->ctx, w->index);
  for (;;) {
    pthread_mutex_lock(&w->mu);
    int resumed = 1;
    cray__task *t = take(&w->ihead, &w->itail);
    if (!t) resumed = 0, t = take(&w->qhead, &w->qtail);
    note_work(w);
    if (!t) {
      pthread_mutex_unlock(&w->mu);
      t = steal(s, w);
      if (!t && spin(s, w)) continue;
      pthread_mutex_lock(&w->mu);
    }
    if (!t) {
      /* Re-check under the lock: a push after the look above signals us. */
      if (!w->ihead && !w->qhead) {
        if (atomic_load(&s->exiting)) {
          pthread_mutex_unlock(&w->mu);
          break;
        }
        w->sleeping = 1;
        atomic_fetch_add(&s->sleepers, 1);
        pthread_cond_wait(&w->cv, &w->mu);
        atomic_fetch_sub(&s->sleepers, 1);
        w->sleeping = 0;
      }
      pthread_mutex_unlock(&w->mu);
      continue;
    }
    pthread_mutex_unlock(&w->mu);
    if (resumed) {
      resume(s, w, t);
      cray__task_release(s->store, t); /* the inbox's reference */
    } else {
      start(s, w, t);
    }
  }
  if (w->w) s->ex->worker_close(s->ctx, w->w);
  self_worker = NULL;
  return NULL;
}

/* ---- submitting ---- */

static void dep_resolved(cray__waiter *wt) {
  cray__task *t = container_of(wt, cray__task, dep_waiter);
  if (atomic_fetch_sub(&t->deps_left, 1) == 1) enqueue(t->sched, t);
}

void cray__sched_submit(cray__sched *s, cray__task *t) {
  t->sched = s;
  t->dep_waiter.wake = dep_resolved;
  atomic_fetch_add_explicit(&s->submitted, 1, memory_order_relaxed);
  atomic_fetch_add(&s->live, 1);
  for (uint32_t i = 0; i < t->nreturns; i++) t->returns[i]->producer = t;
  if (t->ndeps == 0) {
    enqueue(s, t);
    return;
  }
  atomic_store_explicit(&t->state, CRAY__TASK_WAITING_DEPS, memory_order_relaxed);
  /* One extra count while subscribing, so the task cannot be queued halfway through. */
  atomic_store(&t->deps_left, t->ndeps + 1);
  uint32_t ready = 1;
  for (uint32_t i = 0; i < t->ndeps; i++) {
    t->dep_nodes[i].waiter = &t->dep_waiter;
    if (cray__store_subscribe(s->store, t->deps[i], &t->dep_nodes[i]) != 0) ready++;
  }
  if (atomic_fetch_sub(&t->deps_left, ready) == ready) enqueue(s, t);
}

int cray__sched_worker_index(cray__sched *s) {
  return self_worker && self_worker->s == s ? self_worker->index : -1;
}

int cray__sched_stopping(cray__sched *s) { return atomic_load(&s->stopping); }

/* ---- waits ---- */

static void wait_resolved(cray__waiter *wt) {
  cray__task *t = container_of(wt, cray__task, wait_waiter);
  if (atomic_fetch_add(&t->fired, 1) + 1 >= t->want) wake(t->sched, t);
}

static void timer_fired(void *arg, int why) {
  cray__task *t = arg;
  if (why != CRAY__TIMER_CANCELLED) wake(t->sched, t);
  cray__task_release(t->sched->store, t);
}

int cray__sched_wait_begin(cray__sched *s, cray__task *t, cray__entry *const *entries, size_t n,
                           size_t want, double timeout) {
  t->wait_waiter.wake = wait_resolved;
  atomic_store(&t->fired, 0);
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
    memcpy(t->wait_entries, entries, n * sizeof *entries);
    t->nwait = n;
  }
  if (timeout >= 0) {
    cray__task_retain(t);
    if (!(t->timer = cray__timer_add(s->timers, timeout, timer_fired, t))) {
      cray__task_release(s->store, t);
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
  if (already && atomic_fetch_add(&t->fired, already) + already >= want) wake(s, t);
  return 0;
}

void cray__sched_wait_end(cray__sched *s, cray__task *t) {
  for (size_t i = 0; i < t->nwait; i++)
    if (t->wait_nodes[i].waiter) cray__store_unsubscribe(s->store, t->wait_entries[i], &t->wait_nodes[i]);
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

int cray__sched_cancel(cray__sched *s, cray__entry *e) {
  cray__task *t = NULL;
  if (!cray__store_with_producer(s->store, e, retain_producer, &t)) return 0;
  atomic_store(&t->cancelled, 1);
  switch (atomic_load(&t->state)) {
    case CRAY__TASK_WAITING_DEPS:
      /* Queue it now (it fails when popped); later dep wakes count below zero, harmless. */
      if (atomic_exchange(&t->deps_left, 0) > 0) enqueue(s, t);
      break;
    case CRAY__TASK_SUSPENDED:
      wake(s, t);
      break;
    default:
      break; /* queued: fails when popped; running: at its next wait */
  }
  cray__task_release(s->store, t);
  return 1;
}

/* ---- start, stop, stats ---- */

int cray__sched_start(cray__sched **out, cray_runtime *rt, const cray__executor *ex, void *ctx) {
  cray__sched *s = cray__calloc(1, sizeof *s);
  if (!s) return CRAY_ENOMEM;
  s->rt = rt;
  s->store = rt->store;
  s->ex = ex;
  s->ctx = ctx;
  s->n = rt->opts.workers;
  s->nres = rt->opts.nresources;
  s->workers = cray__calloc((size_t)s->n, sizeof *s->workers);
  s->res_free = cray__calloc((size_t)(s->nres ? s->nres : 1), sizeof *s->res_free);
  int rc = s->workers && s->res_free ? cray__timers_start(&s->timers) : CRAY_ENOMEM;
  if (rc) {
    cray__free(s->workers);
    cray__free(s->res_free);
    cray__free(s);
    return rc;
  }
  for (int i = 0; i < s->nres; i++) s->res_free[i] = rt->opts.resource_counts[i];
  pthread_mutex_init(&s->res_mu, NULL);
  pthread_mutex_init(&s->live_mu, NULL);
  pthread_cond_init(&s->live_cv, NULL);
  for (int i = 0; i < s->n; i++) {
    worker *w = &s->workers[i];
    w->index = i;
    w->s = s;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
  }
  for (int i = 0; i < s->n; i++) pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]);
  *out = s;
  return 0;
}

static void signal_all(cray__sched *s) {
  for (int i = 0; i < s->n; i++) {
    worker *w = &s->workers[i];
    pthread_mutex_lock(&w->mu);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
  }
}

void cray__sched_stop(cray__sched *s) {
  atomic_store(&s->stopping, 1);
  cray__timers_flush(s->timers);
  /* Tasks parked for resources fail as cancelled. */
  pthread_mutex_lock(&s->res_mu);
  cray__task *parked = s->res_head;
  s->res_head = s->res_tail = NULL;
  pthread_mutex_unlock(&s->res_mu);
  while (parked) {
    cray__task *next = parked->next;
    enqueue(s, parked);
    parked = next;
  }
  signal_all(s);
  pthread_mutex_lock(&s->live_mu);
  while (atomic_load(&s->live) > 0) pthread_cond_wait(&s->live_cv, &s->live_mu);
  pthread_mutex_unlock(&s->live_mu);
  atomic_store(&s->exiting, 1);
  signal_all(s);
  for (int i = 0; i < s->n; i++) pthread_join(s->workers[i].thread, NULL);
  cray__timers_stop(s->timers);
  for (int i = 0; i < s->n; i++) {
    pthread_mutex_destroy(&s->workers[i].mu);
    pthread_cond_destroy(&s->workers[i].cv);
  }
  pthread_mutex_destroy(&s->res_mu);
  pthread_mutex_destroy(&s->live_mu);
  pthread_cond_destroy(&s->live_cv);
  cray__free(s->workers);
  cray__free(s->res_free);
  cray__free(s);
}

void cray__sched_stats_get(cray__sched *s, cray__sched_stats *out) {
  out->submitted = atomic_load(&s->submitted);
  int64_t running = atomic_load(&s->running);
  out->running = running > 0 ? (uint64_t)running : 0;
  out->finished = atomic_load(&s->finished);
  out->failed = atomic_load(&s->failed);
}
