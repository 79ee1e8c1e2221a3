/*
 * fstats.h: per-function run statistics, recorded where tasks end, read by cray.stats().
 *
 * Each worker thread records into its own slot, which only it writes, so recording takes
 * no lock and no read-modify-write: a task's end hashes its name into the slot's table
 * and adds to plain counters and a log-scale histogram of run times. Readers (the
 * driver's cray.stats()) load the same counters relaxed and merge the slots by name.
 * Threads that are not workers (the driver failing a task, a timer) share slot 0 under
 * its mutex. The actor counters are rare events: one relaxed atomic add each.
 *
 * Times: `deps` is the time a task waited for its arguments (from submission until the
 * last resolved; for an actor call, while its turn had come and they were not there);
 * `queued` the rest of the time from submission to the last start (in a queue, for
 * resources, behind an actor's other calls); `run` from the last start to the end, waits
 * inside included.
 * Each worker also sums the time it spends running tasks, from each start to the task's
 * end (on the end's stamp) or to the executor's return when it did not end: its busy
 * time. Times are taken as stamps (cray__fstats_stamp), which cost a fraction of a clock
 * read, and turned into seconds when read, at the rate the stamps advanced against the
 * clock since the recorder was made.
 */
#ifndef CRAY_FSTATS_H
#define CRAY_FSTATS_H

#include <stddef.h>
#include <stdint.h>

#include "task.h"

typedef struct cray__fstats cray__fstats;

/* A recorder for `workers` worker threads (slots 1..workers) and the others (slot 0);
 * NULL when memory is short. */
cray__fstats *cray__fstats_new(int workers);
void cray__fstats_free(cray__fstats *f);

/* A time stamp: the CPU's invariant time-stamp counter where it has one (x86), else
 * nanoseconds of the monotonic clock. Only differences of stamps mean anything. */
uint64_t cray__fstats_stamp(void);

/* Records the end of t (failed or not) at stamp `now`, on slot `slot`. */
void cray__fstats_task_end(cray__fstats *f, int slot, const cray__task *t, int failed,
                           uint64_t now);
/* Adds the time from stamp `since` to stamp `now` to worker slot's busy time; on that
 * worker's thread. */
void cray__fstats_busy(cray__fstats *f, int slot, uint64_t since, uint64_t now);

enum { CRAY__ACTOR_CREATED, CRAY__ACTOR_RESTARTED, CRAY__ACTOR_DIED, CRAY__ACTOR_MOVED,
       CRAY__ACTOR_EVENTS };
void cray__fstats_actor(cray__fstats *f, int event);

/* One function's figures, merged over slots; times in seconds. */
typedef struct cray__fstats_fn {
  const char *name; /* valid while f lives */
  uint64_t calls, failed, retries, ran;
  double total, mean, p50, p99, queued, deps;
} cray__fstats_fn;

typedef struct cray__fstats_report {
  cray__fstats_fn *fns; /* sorted by total run time, largest first */
  size_t nfns;
  uint64_t actors[CRAY__ACTOR_EVENTS];
  double elapsed;       /* seconds since f was made */
  int workers;
  double *busy;         /* each worker's busy fraction of `elapsed` */
} cray__fstats_report;

/* Fills *r (the caller frees it with cray__fstats_report_free); CRAY_ENOMEM when memory
 * is short. */
int cray__fstats_read(cray__fstats *f, cray__fstats_report *r);
void cray__fstats_report_free(cray__fstats_report *r);

#endif
