/*
 * trace.h: the timeline recorder (cray.timeline, crayrun --timeline).
 *
 * While recording is on, the runtime's hooks write fixed-size binary events into a ring
 * buffer owned by the calling thread: a task submitted, a stretch of a task run on a
 * worker, a task's end and outcome, a dependency that released a task, a wait begun
 * inside a task, a spill write or restore. A ring holds CRAY__TRACE_RING events; when it
 * is full the oldest are overwritten and counted as dropped. An event takes no lock and
 * no allocation (a thread's first event while recording takes or makes its ring, once).
 * With recording off every hook is one relaxed load and a branch predicted not taken
 * (CRAY__TRACING).
 *
 * Names are not copied into events: a task's name is interned once (its `trace_name`, in
 * the recorder's own table, which lives as long as the process) and failure kinds the
 * same way; a wait names itself with a string literal. cray__trace_write reads every ring
 * while the threads go on writing (each ring is a seqlock, see trace.c) and turns the
 * events into Chrome trace-event JSON (trace_json.c).
 *
 * Recording is process-wide: one timeline spans every runtime the process opens. Under
 * MPI each rank records its own; rank 0 gathers every rank's events (cluster.c: texts
 * travel instead of interned names, which cray__trace_intern makes again there) and
 * cray__trace_write_job writes them as one timeline, one process per rank, their times
 * put on one clock by the wall-clock time each rank's recording started.
 */
#ifndef CRAY_TRACE_H
#define CRAY_TRACE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cray.h"

struct cray__task;

/* Events each thread's ring holds: 65536 of 64 bytes (4 MiB), or the power of two at
 * most CRAY_TIMELINE_EVENTS (at least 64) that the environment held when recording first
 * started. */
#define CRAY__TRACE_RING (1u << 16)
uint64_t cray__trace_ring_events(void);

extern _Atomic int cray__tracing;
/* relaxed: a hint; an event recorded just after recording starts or stops is harmless */
#define CRAY__TRACING() __builtin_expect(atomic_load_explicit(&cray__tracing, memory_order_relaxed), 0)

/* The thread that calls it is, on the timeline, a worker (index), the driver or the spill
 * thread; other threads are "thread N". Cheap: a thread-local store. */
enum { CRAY__TRACE_OTHER, CRAY__TRACE_DRIVER, CRAY__TRACE_SPILL, CRAY__TRACE_WORKER };
void cray__trace_thread(int role, int index);

/* Starts recording (again, if stopped: what was recorded stays). 0 or CRAY_ENOMEM. */
int cray__trace_start(void);
/* Stops recording; what was recorded stays until cray__trace_start's caller writes it. */
void cray__trace_stop(void);

/* How a stretch of a task's run ended (sched.h's CRAY__RUN_*), and how a task ended. */
enum { CRAY__TRACE_FINISHED, CRAY__TRACE_FAILED, CRAY__TRACE_CANCELLED };

/* Times are stamps (cray__fstats_stamp: the time-stamp counter, or nanoseconds), turned
 * into nanoseconds when the timeline is written. */
uint64_t cray__trace_stamp(void);

/* The hooks; call them only when CRAY__TRACING(). */
/* t was submitted; site is its name's index in the interned names (sites.h) of the
 * runtime whose ids carry `nonce`. */
void cray__trace_submit(struct cray__task *t, uint64_t nonce, uint32_t site);
void cray__trace_run(struct cray__task *t, uint64_t start, uint64_t end, int rc);
/* t ended at `now`: failed with error_blob (NULL when memory was short), or finished
 * with result_bytes. */
void cray__trace_end(struct cray__task *t, int failed, const void *error_blob, size_t result_bytes,
                     uint64_t now);
/* t's last dependency resolved on this thread, which releases it to run. */
void cray__trace_release(struct cray__task *t);
/* t begins to wait inside its run, in `fn` (a string literal: "cray.get", "cray.sleep"). */
void cray__trace_wait(struct cray__task *t, const char *fn);
/* The calling thread blocked in `fn` (a string literal) from start to now: the driver's
 * cray.get, say. */
void cray__trace_block(uint64_t start, const char *fn);
/* A spill write of n objects, or a restore of one (id), of `bytes`, from start to now. */
void cray__trace_spill(uint64_t start, size_t n, uint64_t bytes);
void cray__trace_restore(uint64_t start, const cray_id *id, uint64_t bytes);

/* Writes what is recorded so far as Chrome trace-event JSON to f; rank is the process's
 * MPI rank, or -1 outside a cluster. Sets how many events it read and how many the rings
 * had dropped. 0, or CRAY_ENOMEM / CRAY_ESYS. */
int cray__trace_write(FILE *f, int rank, uint64_t *events, uint64_t *dropped);
/* ---- for trace_json.c: the events as read back ---- */

enum {
  CRAY__TEV_SUBMIT = 1, /* t0 submitted; bytes: arguments */
  CRAY__TEV_RUN,        /* t0 .. t1 on a worker; aux: CRAY__RUN_*; actor */
  CRAY__TEV_END,        /* t0; aux: outcome; name2: failure kind; bytes: results */
  CRAY__TEV_RELEASE,    /* t0 */
  CRAY__TEV_WAIT,       /* t0 the wait began; ptr: its literal name */
  CRAY__TEV_SPILL,      /* t0 .. t1; bytes; aux: objects */
  CRAY__TEV_RESTORE,    /* t0 .. t1; bytes */
  CRAY__TEV_BLOCK,      /* t0 .. t1; ptr: its literal name */
};

typedef struct cray__tev {
  int type, aux, tid;
  int pid;               /* the process on the timeline: 1, or rank + 1 under MPI */
  uint32_t name, name2;  /* interned: cray__trace_name */
  uint64_t t0, t1;       /* nanoseconds since recording first started */
  cray_id id, actor;     /* the task, its actor (zero when none) */
  uint64_t bytes;
  const char *ptr;
} cray__tev;

/* An interned name's text ("" for 0). */
const char *cray__trace_name(uint32_t name);
/* Every thread's events as read now, and how many were dropped; the caller frees *out. */
int cray__trace_snapshot(cray__tev **out, size_t *n, uint64_t *dropped);
/* The tracks: the name of tid, its sort index. */
void cray__trace_tid_name(int tid, char *buf, size_t len, int *sort);

/* Writes events as JSON (trace_json.c); cluster: the processes are ranks. */
int cray__trace_json(FILE *f, cray__tev *ev, size_t n, uint64_t dropped, int cluster);

/* ---- a job's timeline (cluster.c gathers it) ---- */

/* One rank's events as it read them, and the wall-clock time (seconds) its recording
 * first started (0: never). */
typedef struct cray__trace_rank {
  cray__tev *ev;
  size_t n;
  uint64_t dropped;
  double wall;
} cray__trace_rank;

/* The wall-clock time recording first started here, or 0. */
double cray__trace_wall(void);
/* text's interned name (0 when the table is full). */
uint32_t cray__trace_intern(const char *text);
/* Writes the events of ranks[0..nranks) (rank k's as process k + 1) as one timeline, as
 * cray__trace_write does. */
int cray__trace_write_job(FILE *f, cray__trace_rank *ranks, int nranks, uint64_t *events,
                          uint64_t *dropped);

#endif
