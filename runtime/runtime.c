/*
 * runtime.c: cray_open and cray_close, and the C API over the object store.
 */
#include "runtime.h"

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
  if (rc) goto fail;
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

void cray_close(cray_runtime *rt) { cray__close(rt, NULL, NULL); }

void cray__close(cray_runtime *rt, uint64_t *tasks, uint64_t *calls) {
  if (tasks) *tasks = 0;
  if (calls) *calls = 0;
  if (!rt) return;
  cray__progress_stop(rt);
  if (rt->cluster) cray__cluster_detach(rt->cluster);
  if (rt->sched) {
    cray__log(CRAY__LOG_DEBUG, "stopping the workers");
    cray__sched_stop(rt->sched, tasks, calls);
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
