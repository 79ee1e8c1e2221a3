/*
 * task.c: tasks' memory, failing them, and the error objects the runtime makes itself.
 * A task that fits in a small block (alloc.h) lives in one: one thread makes a task and
 * often another frees it.
 */
#include "task.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "actor.h"
#include "alloc.h"
#include "stream.h"
#include "wire.h"

cray__task *cray__task_new(uint32_t nreturns, uint32_t ndeps, int nresources, const char *name) {
  size_t namelen = name ? strlen(name) + 1 : 0;
  size_t size = sizeof(cray__task) + nreturns * sizeof(cray__entry *) +
                ndeps * (sizeof(cray__entry *) + sizeof(uint32_t) + sizeof(cray__waitnode)) +
                (size_t)nresources * sizeof(cray__resource_need) + namelen;
  int small = size <= CRAY__SMALL;
  cray__task *t = small ? cray__small_alloc() : cray__calloc(1, size);
  if (!t) return NULL;
  if (small) memset(t, 0, size);
  t->small = small;
  char *p = (char *)(t + 1);
  t->dep_nodes = (cray__waitnode *)p, p += ndeps * sizeof(cray__waitnode);
  t->returns = (cray__entry **)p, p += nreturns * sizeof(cray__entry *);
  t->deps = (cray__entry **)p, p += ndeps * sizeof(cray__entry *);
  t->resources = (cray__resource_need *)p, p += (size_t)nresources * sizeof(cray__resource_need);
  t->dep_arg = (uint32_t *)p, p += ndeps * sizeof(uint32_t);
  if (name) t->name = memcpy(p, name, namelen);
  t->nreturns = nreturns;
  t->ndeps = ndeps;
  t->nresources = nresources;
  t->home = -1;
  t->disarmed = 1; /* wakes are armed when it starts */
  atomic_init(&t->woken, 1);
  atomic_init(&t->rc, 1);
  return t;
}

void cray__task_release(cray__store *s, cray__task *t) {
  if (atomic_fetch_sub_explicit(&t->rc, 1, memory_order_acq_rel) != 1) return;
  for (uint32_t i = 0; i < t->ndeps; i++) {
    if (!t->deps[i]) continue;
    cray__store_unsubscribe(s, t->deps[i], &t->dep_nodes[i]);
    cray__store_release(s, t->deps[i]);
  }
  for (uint32_t i = 0; i < t->nreturns; i++)
    if (t->returns[i]) cray__store_release(s, t->returns[i]);
  /* Before t->fn, the actor's entry, which may be what keeps the actor. Relaxed: a count. */
  if (t->counts_pending)
    atomic_fetch_sub_explicit(&t->actor->pending_calls, 1, memory_order_relaxed);
  if (t->fn) cray__store_release(s, t->fn);
  if (t->retry_filter) cray__store_release(s, t->retry_filter);
  if (t->stream_wait) cray__store_release(s, t->stream_wait);
  if (t->stream) cray__stream_release(t->stream);
  if (t->args) {
    cray__store_count_bytes(s, -(int64_t)t->args->len);
    cray__blob_release(s, t->args);
  }
  if (t->error) cray__blob_release(s, t->error);
  for (cray__task *k = t->kids, *next; k; k = next) {
    next = k->kid_next;
    cray__task_release(s, k);
  }
  if (t->small) cray__small_free(t);
  else cray__free(t);
}

void cray__task_fail(cray__store *s, cray__task *t, cray__blob *blob) {
  for (uint32_t i = 0; i < t->nreturns; i++) {
    cray__blob_retain(blob);
    if (cray__store_resolve(s, t->returns[i], blob, 1) != 0) cray__blob_release(s, blob);
  }
  cray__blob_release(s, blob);
}

/* The bytes of the first value of b. */
static size_t first_value_len(const cray__blob *b) {
  cray__mp_reader r = {b->data, b->data + b->len};
  return cray__mp_skip(&r, 256) == 0 ? (size_t)(r.p - b->data) : b->len;
}

static void put_cstr(cray__buf *b, const char *s) { cray__mp_str(b, s, strlen(s)); }

cray__blob *cray__error_blob(const char *kind, const char *task, const cray__blob *cause,
                             const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  cray__buf b;
  cray__buf_init(&b);
  size_t at = cray__mp_ext_begin(&b, CRAY__EXT_ERROR);
  cray__mp_map(&b, 2 + (task != NULL) + (cause != NULL));
  put_cstr(&b, "kind");
  put_cstr(&b, kind);
  put_cstr(&b, "message");
  put_cstr(&b, msg);
  if (task) {
    put_cstr(&b, "task");
    put_cstr(&b, task);
  }
  if (cause) {
    put_cstr(&b, "cause");
    cray__buf_write(&b, cause->data, first_value_len(cause));
  }
  cray__mp_ext_end(&b, at);
  cray__blob *blob = b.failed ? NULL
                              : cray__blob_new(b.data, b.len, 1, cause ? cause->refs : NULL,
                                               cause ? cause->nrefs : 0, CRAY__BLOB_TRUSTED);
  cray__buf_free(&b);
  return blob;
}
