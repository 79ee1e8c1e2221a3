/*
 * sched_internal.h: the scheduler's workers and state, shared by sched.c (tasks, queues,
 * waits) and actor.c (actors' mailboxes and lives). Nothing outside those two files
 * includes it.
 */
#ifndef CRAY_SCHED_INTERNAL_H
#define CRAY_SCHED_INTERNAL_H

#include <pthread.h>

#include "actor.h"
#include "alloc.h"
#include "fstats.h"
#include "io.h"
#include "sched.h"

typedef struct worker {
  _Alignas(CRAY__LINE) pthread_t thread; /* each worker on lines of its own */
  int index;
  cray__sched *s;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  cray__task *qhead, *qtail;  /* not started */
  cray__task *ihead, *itail;  /* resumptions, and actor calls whose arguments came */
  cray__actor *rhead, *rtail; /* actors homed here with something to do */
  cray__actor *lhead, *ltail; /* actors homed here that this thread's sends found idle, to
                                 list at its next look for work (its thread only) */
  int sleeping;
  _Atomic int work;           /* WORK_* bits: what the queues hold, for spinning workers to
                                 read without the lock; written under it (note_work) */
  void *w;                    /* the executor's state */
  _Atomic(cray__task *) running; /* the task the executor runs, for interrupts */
  _Atomic uint32_t running_site; /* its site and id, published with it: a stop that gives */
  _Atomic uint64_t running_hi, running_lo; /* up names it without touching the task */
  cray__actor *actors;        /* every actor homed here (under mu, or anyone's once the
                                 worker has stopped), but for those still in `born` */
  _Atomic(cray__actor *) born; /* actors made here without an init call, pushed without
                                  the lock; moved to `actors` under it (actor.c, take_born) */
  int actors_shut;            /* its actors were told the runtime stops */
  int depth;                  /* work nested in a C function's wait (its thread only) */
  const cray__task *stretch;  /* the task this thread runs, from stamp stretch_at, */
  uint64_t stretch_at;        /* whose busy time is not added yet (its thread only) */
  const cray__task *ended;    /* the task that ended last on this thread (only compared: */
  uint64_t ended_at;          /* it may be freed) and its end's stamp (its thread only) */
} worker;

enum { WORK_QUEUED = 1, WORK_INBOX = 2, WORK_ACTORS = 4 };

/* Task counts, one set per worker and one for every other thread, each on its own cache
 * line, summed when read: the tasks alive are submitted - finished - failed. A worker's
 * set has one writer, its thread; the others share theirs (sched.c, count_add). */
typedef struct counts {
  _Alignas(CRAY__LINE) _Atomic uint64_t submitted;
  _Atomic uint64_t finished, failed;
  _Atomic uint64_t running; /* started less ended, modulo 2^64: the sum is read signed */
} counts;

struct cray__sched {
  cray_runtime *rt;
  cray__store *store;
  const cray__executor *ex;
  void *ctx;
  cray__timers *timers;
  cray__io *io;
  int n;
  worker *workers;
  _Atomic unsigned rr;
  _Atomic int sleepers;
  _Atomic int stopping;
  _Atomic int exiting;

  pthread_mutex_t res_mu;
  int nres;
  double *res_free;
  cray__task *res_head, *res_tail; /* waiting for resources, in order */

  counts *counts;                /* n + 1: [0] for threads that are not workers */
  cray__fstats *fstats;          /* per-function figures, slots as counts */

  cray__actor_names names;
  _Atomic unsigned actor_rr;     /* placement of new actors */
  _Atomic uint64_t actors_alive;
  _Atomic int drivers_waiting;   /* threads in cray__sched_wait */
  _Atomic uint64_t stopped[2];   /* tasks [0] and actor calls [1] failed once stopping */
};

/* sched.c, for actor.c */
void cray__sched_note_work(worker *w);
/* Makes w's thread look at its queues: signals it when it sleeps. Under w->mu. */
void cray__sched_poke(worker *w);
/* Gives back resources, and starts the tasks waiting for them that now fit. */
void cray__sched_release_resources(cray__sched *s, const cray__resource_need *need, int n);
/* Starts t on w now (t's slot is taken); w is t's actor's home. `at`, when not 0, is the
 * stamp the call before it ended on, with nothing run since: t starts on it when it was
 * queued by then. Returns the stamp t ended on when it ended in this start, else 0. */
uint64_t cray__sched_start_call(cray__sched *s, worker *w, cray__task *t, uint64_t at);
/* Refuses t's wakes until it starts again and takes back one already posted, so that t
 * can go back to a queue (task.h). On t's home worker w, without w->mu. */
void cray__sched_disarm(cray__sched *s, worker *w, cray__task *t);
/* Takes t off the resource queue when it waits there (an actor's init whose actor dies or
 * restarts), before its `next` link is used for anything else. Under res_mu a release
 * that took it off meanwhile has set holds_resources: t then holds them. */
void cray__sched_unpark(cray__sched *s, cray__task *t);
/* Fails t, which is not running, with error (NULL: out of memory); it gives back the
 * resources it holds. */
void cray__sched_fail(cray__sched *s, cray__task *t, cray__blob *error);
/* Counts t as started (delta 1) or no longer running (-1). */
void cray__sched_count_running(cray__sched *s, cray__task *t, int delta);
/* Counts t as submitted (a task the runtime makes itself, such as an actor's restart). */
void cray__sched_count_submit(cray__sched *s, cray__task *t);

/* actor.c, for sched.c */
void cray__actor_names_init(cray__actor_names *n);
/* Queues t (an actor call, counted as submitted) in its actor's mailbox; a dead actor
 * fails it at once. */
void cray__actor_send(cray__sched *s, cray__task *t);
/* The store's callback when an actor's entry is freed. */
void cray__actor_gone(void *ctx, void *actor);
/* w's state was rebuilt: its actors whose instance went with it restart or die. */
void cray__actor_lost(cray__sched *s, worker *w);
/* The runtime stops: w's living actors die. */
void cray__actor_shutdown(worker *w);
/* Lists the actors that w's own thread's sends found idle (w->lhead); w's thread, with
 * w->mu held. Done before w pops anything: until then nothing serves, moves or frees
 * them, as only w's thread does. */
void cray__actor_list_local(worker *w);
/* Serves a, which w (its home) took from its ready list with w->mu held: control first,
 * then calls while slots are free. Returns with w->mu unlocked. */
void cray__actor_serve(cray__sched *s, worker *w, cray__actor *a);
/* The started call t of an actor ends: `error` is what it failed with, NULL when it
 * finished. */
void cray__actor_call_end(cray__sched *s, cray__task *t, const cray__blob *error);
/* The init call t finished: its actor holds t's resources from now on, until it dies. */
void cray__actor_keep_resources(cray__task *t);
/* The call t suspended: with max_concurrency > 1 the actor may start another. */
void cray__actor_call_suspended(cray__sched *s, cray__task *t);
/* w, a's home, popped a from its ready list or ends serving it (w->mu held, `ready` set):
 * moves a to `to` (a sleeping worker, or the one its calls come from) and returns 1 (w->mu
 * unlocked) when it has no call started and its instance can be packed; else returns 0
 * with w->mu held, a still popped. */
int cray__actor_move(cray__sched *s, worker *w, cray__actor *a, worker *to);
/* After the workers stopped: frees every actor. */
void cray__actor_free_all(cray__sched *s);

#endif
