/*
 * runtime.c: cray_open and cray_close, and the C API over the object store.
 */
#include "runtime.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "alloc.h"
#include "progress.h"
#include "sites.h"
#include "cluster.h"
#include "log.h"
#include "spill.h"
#include "wait.h"

/* Why the last cray_open of this thread failed, for cray__open_error. */
static _Thread_local char open_error[512];

const char *cray__open_error(int rc) { return open_error[0] ? open_error : cray_strerror(rc); }

size_t cray__physical_memory(void) {
  long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
  return pages > 0 && size > 0 ? (size_t)pages * (size_t)size : 0;
}

int cray__online_cpus(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

/* $CRAY_STOP_TIMEOUT: seconds >= 0, or "inf" for no limit (-1). 0, or CRAY_EINVAL with
 * open_error saying why. */
static int stop_timeout(double *out) {
  const char *v = getenv("CRAY_STOP_TIMEOUT");
  *out = CRAY__STOP_TIMEOUT;
  if (!v) return 0;
  char *end;
  double d = strtod(v, &end);
  if (end == v || *end || !(d >= 0)) {
    snprintf(open_error, sizeof open_error,
             "CRAY_STOP_TIMEOUT must be a number of seconds >= 0, or inf (got '%.64s')", v);
    return CRAY_EINVAL;
  }
  *out = isinf(d) ? -1 : d;
  return 0;
}

int cray_open(cray_runtime **out, const cray_options *opts) {
  if (!out) return CRAY_EINVAL;
  cray_options defaults;
  if (!opts) {
    cray_options_init(&defaults);
    opts = &defaults;
  }
  open_error[0] = 0;
  int rc = cray__log_setup(getenv("CRAY_LOG"), open_error, sizeof open_error);
  if (rc) return rc;
  cray_runtime *rt = cray__calloc(1, sizeof *rt);
  if (!rt) return CRAY_ENOMEM;
  cray__spill *sp = NULL;
  rc = cray__options_copy(&rt->opts, opts);
  if (rc || (rc = stop_timeout(&rt->stop_timeout))) goto fail;
  if (rt->opts.workers == 0) rt->opts.workers = cray__online_cpus();
  if ((rc = cray__options_add_cpu(&rt->opts))) goto fail;
  if (rt->opts.memory == 0) rt->opts.memory = cray__physical_memory() / 10 * 3;
  cray__id_init(&rt->ids);
  if (!(rt->sites = cray__sites_new())) {
    rc = CRAY_ENOMEM;
    goto fail;
  }
  if ((rc = cray__store_create(&rt->store, rt->opts.memory))) goto fail;
  if ((rc = cray__spill_open(&sp, rt->opts.spill_dir, rt->opts.spill_max, open_error,
                             sizeof open_error)) ||
      (rc = cray__store_spill_to(rt->store, sp)))
    goto fail;
  pthread_mutex_init(&rt->sched_mu, NULL);
  cray__classes_init(&rt->classes);
  cray__cfuncs_init(&rt->cfuncs);
  cray__names_init(&rt->names);
  if ((rt->cluster = cray__cluster_process())) {
    rt->ids.nonce = cray__cluster_id_hi(rt->cluster);
    cray__cluster_attach(rt->cluster, rt);
  }
  cray__store_set_home(rt->store, rt->ids.nonce);
  *out = rt;
  return 0;
fail:
  if (rt->store) cray__store_destroy(rt->store);
  cray__sites_free(rt->sites);
  cray__options_free(&rt->opts);
  cray__free(rt);
  return rc;
}

void cray_close(cray_runtime *rt) {
  char why[1024];
  if (cray__close(rt, NULL, NULL, why, sizeof why)) cray__log(CRAY__LOG_ERROR, "%s", why);
}

/* The runtimes close gave up on: their threads may run on, so they stay allocated, and
 * reachable from here (a leak checker sees them held, not lost). */
static cray_runtime *_Atomic abandoned;

/* Gives rt up with `left` tasks that did not end, the running ones named in why. */
static int abandon(cray_runtime *rt, int left, char *why, size_t n) {
  cray__store_spill_abandon(rt->store);
  rt->abandoned_next = atomic_load_explicit(&abandoned, memory_order_relaxed);
  /* Release, and a loop on failure: a push that others may race (C API runtimes closed
   * on several threads); the list is only ever read by a leak checker. */
  while (!atomic_compare_exchange_weak_explicit(&abandoned, &rt->abandoned_next, rt,
                                                memory_order_release, memory_order_relaxed))
    continue;
  char running[768];
  snprintf(running, sizeof running, "%s", why && n ? why : "");
  if (why && n)
    snprintf(why, n,
             "gave up stopping the runtime after %g s: %d task%s did not end%s%s; a loop that "
             "LuaJIT compiled cannot be interrupted, nor a long C call, so %s on until the "
             "process exits",
             rt->stop_timeout, left, left == 1 ? "" : "s", running[0] ? ": " : "", running,
             left == 1 ? "it runs" : "they run");
  return left;
}

int cray__close(cray_runtime *rt, uint64_t *tasks, uint64_t *calls, char *why, size_t n) {
  if (tasks) *tasks = 0;
  if (calls) *calls = 0;
  if (why && n) why[0] = 0;
  if (!rt) return 0;
  cray__progress_stop(rt);
  if (rt->cluster) cray__cluster_detach(rt->cluster);
  if (rt->sched) {
    cray__log(CRAY__LOG_DEBUG, "stopping the workers");
    int left = cray__sched_stop(rt->sched, tasks, calls, rt->stop_timeout, why, n);
    if (left) return abandon(rt, left, why, n);
    cray__log(CRAY__LOG_INFO, "shut down");
  }
  if (rt->exec_ctx_free) rt->exec_ctx_free(rt->exec_ctx);
  pthread_mutex_destroy(&rt->sched_mu);
  cray__classes_free(&rt->classes, rt->store);
  cray__names_free(&rt->names, rt->store);
  cray__cfuncs_free(&rt->cfuncs);
  cray__store_destroy(rt->store);
  cray__sites_free(rt->sites);
  cray__options_free(&rt->opts);
  cray__free(rt);
  return 0;
}

cray__sched *cray__runtime_sched(cray_runtime *rt, const cray__executor *ex,
                                 void *(*make_ctx)(cray_runtime *rt, void *arg), void *arg,
                                 void (*free_ctx)(void *ctx)) {
  cray__sched *s = atomic_load_explicit(&rt->sched, memory_order_acquire);
  if (s) return s;
  pthread_mutex_lock(&rt->sched_mu);
  if (!(s = rt->sched)) {
    void *ctx = make_ctx(rt, arg);
    if (ctx && cray__sched_start(&s, rt, ex, ctx) == 0) {
      char budget[32];
      cray__log(CRAY__LOG_INFO, "started %d workers; object store budget %s", rt->opts.workers,
                cray__log_size(rt->opts.memory, budget));
      rt->exec_ctx = ctx;
      rt->exec_ctx_free = free_ctx;
      atomic_store_explicit(&rt->sched, s, memory_order_release);
    } else if (ctx) {
      free_ctx(ctx);
      s = NULL;
    }
  }
  pthread_mutex_unlock(&rt->sched_mu);
  return s;
}

int cray_put(cray_runtime *rt, const void *data, size_t len, cray_id *id) {
  if (!rt || (!data && len) || !id) return CRAY_EINVAL;
  cray__blob *b;
  int rc = cray__store_reserve(rt->store, len, 1);
  if (rc || (rc = cray__blob_parse(rt->store, data, len, &b))) return rc;
  cray_id nid = cray__id_new(&rt->ids);
  cray__entry *e = cray__store_insert(rt->store, nid, b);
  if (!e) {
    cray__blob_release(rt->store, b);
    return CRAY_ENOMEM;
  }
  cray__store_hand_out(e);
  *id = nid;
  return 0;
}

int cray_get(cray_runtime *rt, const cray_id *id, double timeout, cray_view *view) {
  if (!rt || !id || !view) return CRAY_EINVAL;
  cray__entry *e = cray__store_lookup(rt->store, id);
  if (!e) return CRAY_ENOTFOUND;
  unsigned char ready;
  cray__sched *s = atomic_load_explicit(&rt->sched, memory_order_acquire);
  char why[512];
  int rc = !s                                      ? cray__wait_entries(rt->store, &e, 1, 1, timeout, &ready)
           : cray__sched_worker_index(s) >= 0 ? cray__sched_wait_helping(s, &e, 1, 1, timeout, &ready)
                                              : cray__sched_wait(s, &e, 1, 1, timeout, &ready, why, sizeof why);
  if (rc >= 0) rc = ready ? 0 : CRAY_ETIMEDOUT;
  cray__blob *b;
  if (rc == 0 && (rc = cray__store_pin(rt->store, e, &b)) == 0) {
    cray__blob_retain(b);
    cray__store_unpin(e);
    *view = (cray_view){b->data, b->len, b->count, b};
    if (cray__entry_state(e) == CRAY__FAILED) rc = CRAY_EOBJERROR;
  }
  cray__store_release(rt->store, e);
  return rc;
}

void cray_view_release(cray_runtime *rt, cray_view *view) {
  if (!rt || !view || !view->owner) return;
  cray__blob_release(rt->store, view->owner);
  view->owner = NULL;
}

int cray_release(cray_runtime *rt, const cray_id *id) {
  if (!rt || !id) return CRAY_EINVAL;
  cray__entry *e = cray__store_lookup(rt->store, id);
  if (!e) return CRAY_ENOTFOUND;
  uint32_t n = atomic_load_explicit(&e->api_refs, memory_order_relaxed);
  do {
    if (n == 0) { /* every handed-out reference was dropped: the rest are not the caller's */
      cray__store_release(rt->store, e);
      return CRAY_EINVAL;
    }
  } while (!atomic_compare_exchange_weak_explicit(&e->api_refs, &n, n - 1, memory_order_relaxed,
                                                  memory_order_relaxed)); /* a count only */
  cray__store_release(rt->store, e); /* the lookup's */
  cray__store_release(rt->store, e); /* the caller's */
  return 0;
}

void cray_store_stats_get(cray_runtime *rt, cray_store_stats *out) {
  if (!rt || !out) return;
  cray__store_stats(rt->store, out);
}
