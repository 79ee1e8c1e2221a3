/*
 * sched.h: the scheduler: worker threads, run queues, resumptions, resources, cancel.
 *
 * Each worker thread owns an executor state (for LuaJIT: one lua_State), a run queue of
 * tasks that have not started, and an inbox of resumptions for tasks suspended on it.
 * Idle workers steal not-started tasks from the others' queues, keep looking for a few
 * tens of microseconds, then sleep on their condition variable; a push signals only a
 * worker that sleeps. A started task stays on
 * its worker (its coroutine lives in that worker's state).
 *
 * The runtime does not know what a task runs: an executor does (cray__executor), called
 * only on worker threads.
 *
 * Locks: each worker's `mu` guards its queue, inbox and sleeping flag; `res_mu` guards
 * the resource table and the tasks waiting for resources. Store shard locks may be held
 * when a worker's lock is taken (wakes run under them), never the other way round.
 */
#ifndef CRAY_SCHED_H
#define CRAY_SCHED_H

#include <stdint.h>

#include "cray.h"
#include "task.h"
#include "timer.h"

enum {
  CRAY__RUN_DONE,      /* finished; the executor resolved the returns */
  CRAY__RUN_SUSPENDED, /* yielded with a wait armed (cray__sched_wait_*) */
  CRAY__RUN_RAISED,    /* the task raised: t->error holds the error object */
  CRAY__RUN_LOST,      /* the worker's state was lost (out of memory): t->error says why */
};

typedef struct cray__executor {
  /* On worker `index`'s thread, before its first task: the worker's state, or NULL when it
   * cannot be made (the worker then fails every task it is given). */
  void *(*worker_open)(void *ctx, int index);
  void (*worker_close)(void *ctx, void *w);
  /* Runs t: a fresh start when t->exec is NULL, else a resumption. */
  int (*run)(void *w, cray__task *t);
  /* Frees a suspended task's continuation without running it. */
  void (*drop)(void *w, cray__task *t);
  /* Frees an actor's instance (a->exec), if it has one. */
  void (*actor_drop)(void *w, struct cray__actor *a);
  /* Whether a's instance was lost with an older state of w (out of memory). */
  int (*actor_lost)(void *w, struct cray__actor *a);
  /* On a's home's thread, a having no call started: a's instance packed for another
   * worker's state (it is dropped here), or NULL, the instance kept, when it cannot move. */
  struct cray__blob *(*actor_pack)(void *w, struct cray__actor *a);
  /* From any thread, while w runs a task: makes the task raise soon, with kind
   * `cancelled`, if it is cancelled or the runtime stops (what it runs then says). */
  void (*interrupt)(void *w);
} cray__executor;

typedef struct cray__sched cray__sched;

typedef struct cray__sched_stats {
  uint64_t submitted, running, finished, failed;
} cray__sched_stats;

/* Starts `workers` worker threads running tasks with ex (ctx is passed to its calls).
 * 0; CRAY_ENOMEM; or CRAY_ESYS when a thread cannot be started (those that were are
 * joined, and nothing is left behind). */
int cray__sched_start(cray__sched **out, cray_runtime *rt, const cray__executor *ex, void *ctx);
/* Cancels what has not run, wakes what waits, waits for running tasks to reach their next
 * yield (interrupting those that take longer than a grace period), then joins the
 * workers and returns 0. *tasks and *calls (when not NULL): how many tasks and actor
 * calls it failed. Tasks that have not ended `timeout` seconds after it began (< 0: no
 * limit) make it give up: it returns how many there are, with the running ones named in
 * stuck[0..n), and leaves s and everything its workers may touch as they are. */
int cray__sched_stop(cray__sched *s, uint64_t *tasks, uint64_t *calls, double timeout,
                     char *stuck, size_t n);
/* The first half of a stop, from any thread (a signal's): from now on tasks fail as
 * cancelled instead of running, waits end, timers fire at once, and the running tasks
 * are interrupted now, without a grace period. */
void cray__sched_interrupt(cray__sched *s);

/* The resource's index, or -1 when the runtime has none of that name. */
int cray__sched_resource(cray__sched *s, const char *name, double *capacity);

/* Copies the units of each resource not held now into out[0..n), n being the runtime's
 * number of resources (rt->opts.nresources), in the order of rt->opts. */
void cray__sched_resources_free(cray__sched *s, double *out);

/* Takes over the caller's reference to t: runs it once its dependencies resolve. An
 * actor call (t->actor set) goes to its actor's mailbox instead (runtime/actor.h). */
void cray__sched_submit(cray__sched *s, cray__task *t);

/* The calling thread's worker index in s, or -1 when it is not one of s's workers. */
int cray__sched_worker_index(cray__sched *s);

/* Arms a wait for the task running on this worker, before it yields: wakes it when `want`
 * of entries[0..n) (all pending, held by the caller until cray__sched_wait_end) resolve,
 * or after `timeout` seconds (< 0: none). With n == 0 it is a sleep. CRAY_ENOMEM when
 * it cannot be armed. */
int cray__sched_wait_begin(cray__sched *s, cray__task *t, cray__entry *const *entries, size_t n,
                           size_t want, double timeout);
/* Disarms it after the task resumed (or when it will not yield after all). */
void cray__sched_wait_end(cray__sched *s, cray__task *t);

/* Cancels the task that will resolve e: a task that has not started never runs; a
 * suspended one is woken to fail; a running one fails at its next wait, or is interrupted
 * (executor's interrupt) before. With `recursive`, the tasks it submitted are cancelled
 * too, and theirs. Returns 1 when there was such a task, 0 when e is resolved already or
 * was not made by a task. */
int cray__sched_cancel(cray__sched *s, cray__entry *e, int recursive);
/* Records child, about to be submitted by parent (the task running on this worker), as
 * parent's child until parent is done. */
void cray__sched_adopt(cray__task *parent, cray__task *child);

int cray__sched_stopping(cray__sched *s);

/* Resumes t, suspended, on its home worker: it looks again at what it waits for (so a
 * wake it did not need is harmless). Any thread. */
void cray__sched_wake(cray__sched *s, cray__task *t);
/* The I/O service (runtime/io.h). */
struct cray__io *cray__sched_io(cray__sched *s);

/* For a thread that is not a worker (the driver): waits as cray__wait_entries does, but
 * without a timeout, when nothing anywhere can make progress before `want` entries resolve,
 * returns
 * CRAY_EDEADLOCK with the wait-for chain, in words, in why[0..whylen) (runtime/deadlock.c). */
int cray__sched_wait(cray__sched *s, cray__entry *const *entries, size_t n, size_t want,
                     double timeout, unsigned char *ready, char *why, size_t whylen);

/* For a worker thread of s (a C function's task calling cray_get): waits as
 * cray__wait_entries does, running the worker's other work meanwhile (resumptions, its
 * actors, queued and stolen tasks, nested up to a fixed depth), so that what it waits for
 * can run even when every worker waits. */
int cray__sched_wait_helping(cray__sched *s, cray__entry *const *entries, size_t n, size_t want,
                             double timeout, unsigned char *ready);

/* Called by the executor just before it resolves a finished task's returns, so counters
 * are exact whenever a result can be seen. */
void cray__sched_count_success(cray__task *t, size_t result_bytes);

/* Whether every worker sleeps with nothing queued: a rank with nothing to do. */
int cray__sched_idle(cray__sched *s);

/* Takes up to max tasks that have not started and may run elsewhere (no actor call, not
 * placed, holding no resources, not cancelled, and accepted by may_move(ctx, t)) off the
 * workers' queues, for another rank (cluster.h); puts them in out[] with the queue's
 * reference and returns how many. They leave this scheduler's counts as if never
 * submitted. */
int cray__sched_give(cray__sched *s, cray__task **out, int max,
                     int (*may_move)(void *ctx, cray__task *t), void *ctx);

void cray__sched_stats_get(cray__sched *s, cray__sched_stats *out);
struct cray__fstats;
/* The scheduler's per-function figures (runtime/fstats.h). */
struct cray__fstats *cray__sched_fstats(cray__sched *s);
/* Actors alive now. */
uint64_t cray__sched_actors_alive(cray__sched *s);

#endif
