/*
 * task.h: a task, from submission to its last return resolved.
 *
 * A task names a function blob and an argument blob, holds the store entries of its
 * returns (which it will resolve) and of its top-level ObjectRef arguments (which it waits
 * for), and carries its options. The runtime treats the function and arguments as opaque:
 * an executor (bindings/executor.c for LuaJIT) runs them.
 *
 * Ownership: a task is reference-counted. The scheduler holds one reference from
 * submission until the task is done; each wake-up source that may still fire (a timer, a
 * cancel in progress) holds one while it can. Which thread touches which field:
 * - set at submission, read-only after: id, fn, args, returns, deps, options, actor,
 *   method, is_init;
 * - atomics, any thread: rc, deps_left, cancelled, woken, fired;
 * - the worker running the task: state, home, exec, wait fields (under the rule that a
 *   wait is set up before the task yields and torn down after it resumes, both on that
 *   worker);
 * - kids_lock: the list of the tasks it submitted (kids, nkids, kids_prune, their
 *   kid_next), which only its own worker changes while it runs, and a recursive cancel
 *   reads from any thread (sched.c).
 *
 * Wakes: `woken` is 0 while a wake may post the task to its home's inbox, and 1 while
 * one is there or on its way, or while the task is disarmed. The first wake to flip it
 * posts the task, holding a reference, and reads `home` only after the flip (the store
 * that armed it published `home`). A task that goes back to not started (an actor's
 * restart or death takes its suspended calls; a retry) is disarmed first on its home
 * (cray__sched_disarm): a wake already posted is taken back out of the inbox, later
 * ones fail to flip `woken`, so a timer or cancel that fires after that never touches
 * the task's links; start arms it again.
 */
#ifndef CRAY_TASK_H
#define CRAY_TASK_H

#include <stdatomic.h>
#include <stddef.h>

#include "mailq.h"
#include "store.h"
#include "timer.h"

enum {
  CRAY__TASK_WAITING_DEPS, /* submitted, some argument not ready */
  CRAY__TASK_QUEUED,       /* in a run queue or waiting for resources */
  CRAY__TASK_RUNNING,      /* its coroutine is on a worker's stack */
  CRAY__TASK_SUSPENDED,    /* yielded in get, wait or sleep */
  CRAY__TASK_DONE,
};

#define CRAY__DEP_FUNCTION UINT32_MAX

typedef struct cray__resource_need {
  int index;     /* into the scheduler's resource table */
  double amount;
} cray__resource_need;

typedef struct cray__task cray__task;
struct cray__task {
  cray__waiter dep_waiter;  /* wakes when an argument resolves */
  cray__waiter wait_waiter; /* wakes when a waited-for entry resolves */
  cray_id id;
  _Atomic uint32_t rc;
  _Atomic uint32_t deps_left;
  _Atomic int cancelled;
  _Atomic int woken;        /* a resumption is on its way to the home worker, or the
                               task is disarmed (see above) */
  _Atomic size_t fired;     /* entries of the current wait that resolved */
  _Atomic int state;
  int home;                 /* worker index once started, -1 before */
  cray__task *next;         /* run queue or inbox link */
  cray__mailq_node mail;    /* an actor call's link in its actor's mailbox queue */

  cray__entry *fn;          /* the function blob */
  cray__blob *args;         /* the argument values; NULL when there are none. Counted in
                             * the store's memory (cray__store_count_bytes) until freed */
  uint32_t nreturns;
  int all_values;           /* one return holds every value returned */
  cray__entry **returns;
  uint32_t ndeps;
  cray__entry **deps;       /* top-level ObjectRef arguments */
  uint32_t *dep_arg;        /* argument position (0-based) of each dep, or
                               CRAY__DEP_FUNCTION for the function itself */
  cray__waitnode *dep_nodes;

  int max_retries, retries, retry_exceptions;
  int counts_pending;       /* counted in its actor's pending_calls until freed */
  int raised;               /* its last run raised (not lost, cancelled or failed early) */
  struct cray__stream *stream; /* a streaming task's items (runtime/stream.h), or NULL */
  cray__entry *stream_wait; /* what a paused streaming task waits for; one reference */
  cray__entry *retry_filter; /* with retry_exceptions: a stored function of the error
                              * that says whether to retry (NULL: retry any); one reference */
  int nresources;
  cray__resource_need *resources;
  int holds_resources;
  int started;              /* counted as running */
  int disarmed;             /* wakes are refused until start arms them (a new task, or
                               one taken back to not started) */
  const char *name;         /* NULL, in the task's own allocation, or its site's text */
  uint32_t site;            /* name interned in the runtime's sites (0: none), set at
                               submission or before (then name is the site's text, which
                               the runtime keeps): a report may name the task without
                               reading it */
  uint32_t trace_name;      /* name interned by the timeline recorder (trace.h), or 0 */
  uint64_t submitted_at, started_at; /* cray__fstats_stamp() at submission and at the last
                                        start (runtime/fstats.h); 0 before */
  uint64_t dep_wait;        /* stamps its arguments kept it from running (fstats.h) */
  uint64_t dep_since;       /* an actor call waiting for its arguments: since which stamp */
  int small;                /* it lives in a small block (alloc.h) */
  int placed;               /* options{node} chose its rank: never given to another
                               (cluster.h) */

  /* an actor call: the actor, its method (a suffix of name), whether it is the call that
   * makes the instance, whether it took one of the actor's slots (sched/actor.c), and
   * the link of the actor's started calls (its home worker only) */
  struct cray__actor *actor;
  const char *method;
  int is_init, dispatched;
  int exit_after;           /* cray.exit_actor ran in it: the actor ends when it returns */
  int from;                 /* the worker that sent it, -1 for the driver or another thread
                               (a hint for moving its actor toward its caller, actor.c) */
  cray__task *sibling;

  struct cray__sched *sched;
  void *exec;               /* the executor's continuation while suspended or running */
  ptrdiff_t heap;           /* the executor's count of Lua heap bytes its runs took, net */
  cray__blob *error;        /* set by the executor when the run raised or was lost */

  /* the tasks it submitted, for a recursive cancel: each holds a reference until this
   * task is done, or until the list is pruned of those that ended */
  _Atomic int kids_lock;
  uint32_t nkids, kids_prune;
  cray__task *kids, *kid_next;

  /* the current wait, while suspended */
  cray__entry **wait_entries;
  cray__waitnode *wait_nodes;
  size_t nwait, want;
  cray__timer *timer;
};

/* A task with room for its returns and deps, a copy of name (when not NULL), rc 1, other
 * fields zero; NULL when memory is short. The caller fills it and hands it to
 * cray__sched_submit. */
cray__task *cray__task_new(uint32_t nreturns, uint32_t ndeps, int nresources, const char *name);
static inline void cray__task_retain(cray__task *t) {
  atomic_fetch_add_explicit(&t->rc, 1, memory_order_relaxed);
}
/* Drops a reference; the last frees the task and releases what it holds. */
void cray__task_release(cray__store *s, cray__task *t);

/* Resolves every return of t that is still pending with `blob` as an error (taking over
 * the caller's reference to blob). */
void cray__task_fail(cray__store *s, cray__task *t, cray__blob *blob);

/* An error-object blob (docs/format.md, ext 5): kind, message, the task's name when not
 * NULL, and as `cause` the error object in `cause` (a FAILED entry's blob) when not NULL.
 * NULL when memory is short. */
cray__blob *cray__error_blob(const char *kind, const char *task, const cray__blob *cause,
                             const char *fmt, ...);

#endif
