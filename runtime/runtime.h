/*
 * runtime.h: what a cray_runtime holds. One per cray_open; the Lua module keeps one for
 * the process between cray.init and cray.shutdown.
 *
 * Under a cluster (cluster.h) it is attached from open to close, and its ids carry the
 * job and rank. Owns the id generator, the object store, a copy of the options, the
 * registered C functions, the objects of the names the C API called, and once the first
 * task is submitted the scheduler with its executor's context. The options' strings and arrays
 * are copied at open and freed at close; close stops the scheduler before it frees the
 * store.
 */
#ifndef CRAY_RUNTIME_H
#define CRAY_RUNTIME_H

#include <pthread.h>

#include "call.h"
#include "cfunc.h"
#include "classes.h"
#include "cray.h"
#include "id.h"
#include "sched.h"
#include "store.h"

struct cray_runtime {
  cray_options opts; /* copies; workers and memory resolved to their defaults */
  cray__idgen ids;
  cray__store *store;
  pthread_mutex_t sched_mu;   /* guards starting the scheduler */
  cray__sched *_Atomic sched; /* NULL until the first task */
  void *exec_ctx;             /* the executor's context, freed with exec_ctx_free */
  void (*exec_ctx_free)(void *ctx);
  cray__classes classes;      /* metatables published by cray.register_class */
  cray__cfuncs cfuncs;        /* C functions registered with cray_register */
  cray__names names;          /* functions and classes named by cray_call and friends */
  struct cray__sites *sites;  /* who made objects (sites.h) */
  struct cray__progress *progress; /* the live progress line, or NULL (progress.h); set
                                      and cleared on the thread that opens and closes */
  struct cray__cluster *cluster; /* the job this rank serves (cluster.h), or NULL */
  double stop_timeout;        /* seconds close waits for running tasks ($CRAY_STOP_TIMEOUT);
                                 < 0: no limit */
  cray_runtime *abandoned_next; /* the list of runtimes close gave up on */
};

/* Seconds close waits for tasks that do not end when $CRAY_STOP_TIMEOUT is not set. */
#define CRAY__STOP_TIMEOUT 5.0

/* cray_close, telling how many tasks and actor calls were still queued, waiting or
 * running and so were cancelled (either pointer may be NULL). Returns 0 once closed.
 * When tasks still run rt->stop_timeout seconds after the close began (a loop that
 * LuaJIT compiled cannot be interrupted, nor a long C call), it gives up: the spill
 * directory is removed, rt is left allocated for the threads that run on until the
 * process exits (never to be used again), and it returns how many tasks had not ended,
 * with why[0..n) saying which run and where. */
int cray__close(cray_runtime *rt, uint64_t *tasks, uint64_t *calls, char *why, size_t n);

/* The runtime's scheduler, started on first use with executor ex and the context that
 * make_ctx(rt, arg) returns (freed by free_ctx at close). NULL when it cannot start. */
cray__sched *cray__runtime_sched(cray_runtime *rt, const cray__executor *ex,
                                 void *(*make_ctx)(cray_runtime *rt, void *arg), void *arg,
                                 void (*free_ctx)(void *ctx));

/* Copies src into dst (strings and arrays duplicated); on failure dst is left for
 * cray__options_free. */
int cray__options_copy(cray_options *dst, const cray_options *src);
void cray__options_free(cray_options *o);
/* Adds the resource "CPU" with o->workers units, unless o has one of that name already
 * (copies made by cray__options_copy have room for it). */
int cray__options_add_cpu(cray_options *o);

/* Why the last cray_open of the calling thread failed (rc is what it returned): the
 * spill directory it could not use, say; a static text for rc otherwise. */
const char *cray__open_error(int rc);

/* Physical memory in bytes, or 0 when it cannot be read. */
size_t cray__physical_memory(void);
/* Online CPUs, at least 1. */
int cray__online_cpus(void);

#endif
