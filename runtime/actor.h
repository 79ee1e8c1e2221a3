/*
 * actor.h: actors: an instance and a mailbox, homed on one worker.
 *
 * An actor is not a thread or a state of its own: its instance lives in its home
 * worker's executor state (for LuaJIT, a table in that worker's lua_State), and its calls
 * are tasks (t->actor set) that queue in its mailbox. The home worker serves the actor
 * when it has calls and a free slot (max_concurrency of them may be started at once, the
 * others wait at yield points) or control to apply (kill, restart, exit, collection).
 * Calls start in the order they were sent; a call whose ObjectRef arguments are pending
 * holds its slot until they resolve, so later calls do not overtake it.
 *
 * Identity: each actor has a store entry of its own (`entry`, flagged `actor`, producer =
 * the actor) that never resolves. Handles are ObjectRefs to it, so Lua handles, handles
 * nested in stored values and calls in flight all count as references; when the last
 * goes, the store calls back and the home worker collects the actor. A name holds a
 * reference too, so named actors live until killed or shutdown.
 *
 * Death (an init error, cray.kill, cray.exit_actor, a lost state without restarts left, a
 * method that raised with restart_on_error and no restarts left):
 * pending and later calls fail with kind "actor_died", whose cause is the init error when
 * there is one; monitors (cray__actor_monitor) resolve with the reason. A restart
 * (cray.kill without no_restart, a lost state, or with restart_on_error a method that
 * raised, while restarts are left) drops the
 * instance and runs init again with its first arguments before any queued call; calls it
 * interrupted are sent again while they have retries left (max_task_retries).
 *
 * Placement: an actor made by a task or an actor is homed on the worker that ran it; one
 * made by any other thread (a driver) goes to the workers in turn. An actor that waits on
 * a ready list behind another, with no call started, may move to a worker that sleeps,
 * and one whose calls all come from one lower-numbered worker, its home having nothing
 * else to run, moves there (cray__actor_move; actor.c, "moving"): its instance goes
 * packed by the codec, so an instance that cannot be packed keeps its actor on its
 * worker.
 *
 * Locks: a call is sent without a lock (see `mail`); the home worker's lock is taken only
 * when that finds the actor idle, and not even then on the home worker's own thread, which
 * lists the actor under the lock of its next look for work (cray__actor_list_local). The
 * home worker's mutex guards `running`, `ready`, `ctl`, `state`, `death`, the monitors
 * and the worker's list of actors (`prev`, `next`: creation links an actor on the creating
 * thread; an unnamed one without init call it pushes on the home's `born` stack, without
 * the lock, which whoever next walks or changes the list moves to it). `exec`, `started`, `lnext` and the serving fields belong to the home worker's
 * thread. The names table has its own mutex, taken before no other.
 */
#ifndef CRAY_ACTOR_H
#define CRAY_ACTOR_H

#include <pthread.h>

#include "mailq.h"
#include "sched.h"

enum { CRAY__ACTOR_ALIVE, CRAY__ACTOR_DEAD };

/* Why an actor died: its monitors' `reason`. */
enum {
  CRAY__DIED_KILLED,
  CRAY__DIED_EXITED,
  CRAY__DIED_INIT_ERROR,
  CRAY__DIED_OUT_OF_MEMORY,
  CRAY__DIED_SHUTDOWN,
  CRAY__DIED_COLLECTED,
  CRAY__DIED_ERROR,
};

/* A monitor: its entry (one reference), and whether it resolves at a restart too. */
typedef struct cray__monitor {
  cray__entry *entry;
  int restarts;
} cray__monitor;

typedef struct cray__actor cray__actor;
struct cray__actor {
  cray_id id;
  cray__entry *entry;       /* its identity; borrowed: the entry owns the actor */
  cray__entry *cls;         /* the class (a stored value), one reference */
  cray__blob *init_args;    /* init's arguments, kept for restarts (NULL: none) */
  char *name;               /* registered name, or NULL; in the actor's allocation */
  char *class_name;         /* in the actor's allocation */
  _Atomic int home;          /* its worker's index: written under both the old and the new
                              * home's locks when it moves (lock_home in actor.c) */
  int max_concurrency, max_restarts, restarts, max_task_retries;
  int max_pending_calls;     /* 0: no bound */
  _Atomic int pending_calls; /* calls counted against it, sent and not yet released */
  int restart_on_error;      /* a method that raises restarts it (or, without restarts
                              * left, it dies with reason "error") */

  /* Senders push calls here without a lock (runtime/mailq.h, linked through the calls'
   * `mail`); the consumer is the thread serving the actor, or the home's lock holder
   * (runtime/actor.c, "the mailbox"). Marked idle: the actor is neither listed nor served
   * and could start a call, so the sender that takes the mark off lists it. */
  cray__mailq mail;

  /* home worker's lock */
  cray__task *mhead, *mtail; /* calls to start before the queue's (put back by a restart),
                              * in order, linked through `next`; owned as `mail` is */
  int running;               /* calls holding a slot */
  int initializing;          /* init holds a slot: nothing else starts */
  int ready;                 /* in the home worker's ready list, or being served */
  _Atomic int ctl;           /* CTL_* bits to apply: set under the lock; the serving thread
                              * also reads it between calls, without the lock */
  int state;
  int reason;                /* CRAY__DIED_*, once dead */
  cray__blob *death;         /* the cause of death (an init or method error), or NULL */
  cray__monitor *monitors;
  uint32_t nmonitors, monitors_cap;
  cray__actor *rnext;        /* ready list */
  cray__actor *lnext;        /* the home's list of actors its own thread's sends found idle,
                              * listed at its next look for work (home worker's thread) */

  /* home worker's thread */
  int serving;               /* cray__actor_serve runs for it: call_end only counts */
  int ended, ended_init, ctl_local; /* what call_end counted meanwhile */
  uint32_t ended_refs;       /* the references to `entry` of the calls that ended meanwhile,
                              * taken over from them and dropped at once (drop_ended) */
  void *exec;                /* the executor's instance */
  cray__blob *packed;        /* its instance in transit: packed by the home it left, unpacked
                              * by the executor of the new one at its next call */
  int pinned;                /* its instance could not be packed: it stays on its worker */
  int caller, from_caller;   /* the worker that sent its last calls, and how many in a row
                              * came from it while it was another worker (toward_caller) */
  cray__resource_need *resources; /* what it holds while alive (from its first init) */
  int nresources;
  cray__task *started;       /* calls started, linked through `sibling` */
  cray__blob *raised;        /* with restart_on_error: the error of the method that raised,
                              * until the restart or death it causes */
  cray__actor *prev, *next;  /* the home worker's list: home worker's lock */
};

typedef struct cray__actor_names {
  pthread_mutex_t mu;
  struct name_node **buckets;
  size_t nbuckets, count;
} cray__actor_names;

typedef struct cray__actor_spec {
  const char *name;       /* NULL: unnamed */
  const char *class_name;
  int get_if_exists;
  int max_restarts, max_task_retries, max_concurrency;
  int max_pending_calls;  /* 0: no bound */
  int restart_on_error;
} cray__actor_spec;

/* The actor whose identity e is, or NULL when e is not an actor's. */
static inline cray__actor *cray__actor_of(const cray__entry *e) {
  return e->actor == CRAY__ENTRY_ACTOR ? (cray__actor *)e->producer : NULL;
}

enum { CRAY__ACTOR_MADE, CRAY__ACTOR_EXISTS, CRAY__ACTOR_NAME_TAKEN };

/* Makes an actor of class cls (the actor takes one more reference to it) whose first call
 * is `init` (a task from cray__task_new with no returns, its args and deps set; the caller's
 * reference is taken over), or, with init NULL, that has no init call: its class has no
 * init and it takes no arguments nor resources, so its first call makes its instance
 * (executor.h). *out is the actor's entry, with one reference for the caller.
 * With a name that is taken: CRAY__ACTOR_EXISTS and *out the named actor's entry when
 * spec->get_if_exists, else CRAY__ACTOR_NAME_TAKEN (init is released either way).
 * CRAY_ENOMEM when memory is short. */
int cray__actor_create(cray__sched *s, const cray__actor_spec *spec, cray__entry *cls,
                       cray__task *init, cray__entry **out);

/* Kills a: restarts it when `restart` and restarts are left, else it dies. 0 when it was
 * alive, CRAY_EINVAL when it was dead already. */
int cray__actor_kill(cray__sched *s, cray__actor *a, int restart);

/* A new entry (one reference for the caller) that resolves when a dies, with a map
 * {reason = "killed" | "exited" | "init_error" | "error" | "out_of_memory" | "shutdown" |
 * "collected", message, cause (the init or method error, when there is one)}; resolved
 * already when a is dead. With `restarts`, it resolves at a's next restart instead when
 * that comes first, with {reason = "restarted", message, restarts (how many so far),
 * cause (the method's error, for a restart_on_error)}. NULL when memory is short. */
cray__entry *cray__actor_monitor(cray__sched *s, cray__actor *a, int restarts);

/* Counts a new call t to a against max_pending_calls: 0, or 1 (t not counted) when a
 * has that many pending already. A counted call is uncounted when the task is freed. */
int cray__actor_count_pending(cray__actor *a, cray__task *t);

/* The entry of the actor named name, with one reference, or NULL. */
cray__entry *cray__actor_lookup(cray__sched *s, const char *name);

/* The names registered now, one after another with a NUL after each, *count of them, in
 * one allocation the caller frees with cray__free; NULL when memory is short. */
char *cray__actor_names_copy(cray__sched *s, size_t *count);

/* "actor 'name' (Class)" or "actor Class", for messages. */
void cray__actor_describe(const cray__actor *a, char *buf, size_t n);

/* The error object of a call to dead actor a, for the call named `call`. */
cray__blob *cray__actor_died_error(cray__actor *a, const char *call);

#endif
