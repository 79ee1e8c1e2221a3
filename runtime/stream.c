/*
 * stream.c: see stream.h.
 */
#include "stream.h"

#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "blob.h"

cray__stream *cray__stream_new(cray__store *store, cray__idgen *ids, cray_id base,
                               size_t backpressure) {
  cray__stream *st = cray__calloc(1, sizeof *st);
  if (!st) return NULL;
  atomic_init(&st->rc, 2);
  pthread_mutex_init(&st->mu, NULL);
  st->store = store;
  st->ids = ids;
  st->base = base;
  st->backpressure = backpressure;
  return st;
}

/* Drops a reference; the last frees the stream, and the entries it holds when `store`. */
static void release(cray__stream *st, int store) {
  /* acq_rel: the last owner must see every write the other made before letting go. */
  if (atomic_fetch_sub_explicit(&st->rc, 1, memory_order_acq_rel) != 1) return;
  if (store) {
    for (size_t i = 0; i < st->len; i++) cray__store_release(st->store, st->queue[st->head + i]);
    if (st->news) cray__store_release(st->store, st->news);
    if (st->resume) cray__store_release(st->store, st->resume);
  }
  cray__free(st->queue);
  pthread_mutex_destroy(&st->mu);
  cray__free(st);
}

void cray__stream_release(cray__stream *st) { release(st, 1); }
void cray__stream_release_orphan(cray__stream *st) { release(st, 0); }

/* Resolves *slot (a pending entry the stream holds) with nil and lets it go. Under mu. */
static void signal_slot(cray__stream *st, cray__entry **slot) {
  cray__entry *e = *slot;
  if (!e) return;
  *slot = NULL;
  static const uint8_t nil = 0xc0;
  cray__blob *b = cray__blob_new(&nil, 1, 1, NULL, 0, CRAY__BLOB_TRUSTED);
  if (b && cray__store_resolve(st->store, e, b, 0) != 0) cray__blob_release(st->store, b);
  cray__store_release(st->store, e);
}

/* Fills *slot with a new pending entry (the stream's reference) and returns it with one
 * more reference for the caller; NULL when memory is short. Under mu. */
static cray__entry *new_signal(cray__stream *st, cray__entry **slot) {
  cray__entry *e = cray__store_insert(st->store, cray__id_new(st->ids), NULL);
  if (!e) return NULL;
  cray__store_retain(e);
  *slot = e;
  return e;
}

/* Makes room for one more item in the queue: 0, or CRAY_ENOMEM. Under mu. */
static int room(cray__stream *st) {
  if (st->head + st->len < st->cap) return 0;
  if (st->head > 0) {
    memmove(st->queue, st->queue + st->head, st->len * sizeof *st->queue);
    st->head = 0;
    return 0;
  }
  size_t cap = st->cap ? st->cap * 2 : 16;
  cray__entry **v = cray__realloc(st->queue, cap * sizeof *v);
  if (!v) return CRAY_ENOMEM;
  st->queue = v;
  st->cap = cap;
  return 0;
}

int cray__stream_put(cray__stream *st, cray__blob *blob, cray__entry **resume) {
  pthread_mutex_lock(&st->mu);
  cray__entry *e = NULL;
  int rc = room(st);
  if (rc == 0) {
    e = cray__store_insert(st->store, cray__id_with_index(st->base, (unsigned)st->produced + 2),
                           blob);
    if (!e) rc = CRAY_ENOMEM;
  }
  if (rc == 0) {
    if (!st->forward || st->forward(st->hook_ctx, st, e) != 0) {
      st->queue[st->head + st->len++] = e;
      signal_slot(st, &st->news);
    }
    st->produced++;
    if (st->backpressure && !st->took && st->produced - st->taken > st->backpressure &&
        (*resume = new_signal(st, &st->resume)))
      rc = 1;
  }
  pthread_mutex_unlock(&st->mu);
  if (rc < 0) cray__blob_release(st->store, blob);
  return rc;
}

void cray__stream_end(cray__stream *st) {
  pthread_mutex_lock(&st->mu);
  st->ended = 1;
  signal_slot(st, &st->news);
  pthread_mutex_unlock(&st->mu);
}

void cray__stream_link(cray__stream *st, int (*forward)(void *ctx, cray__stream *st,
                                                        cray__entry *item),
                       void (*took)(void *ctx, cray__stream *st, size_t taken), void *ctx) {
  pthread_mutex_lock(&st->mu);
  st->forward = forward;
  st->took = took;
  st->hook_ctx = ctx;
  pthread_mutex_unlock(&st->mu);
}

/* Lets a paused producer go on once it is no more than `backpressure` ahead. Under mu. */
static void maybe_resume(cray__stream *st) {
  if (st->resume && (!st->backpressure || st->produced - st->taken <= st->backpressure))
    signal_slot(st, &st->resume);
}

size_t cray__stream_bound(cray__stream *st) {
  pthread_mutex_lock(&st->mu);
  size_t b = st->backpressure;
  pthread_mutex_unlock(&st->mu);
  return b;
}

void cray__stream_taken(cray__stream *st, size_t taken) {
  pthread_mutex_lock(&st->mu);
  if (taken == SIZE_MAX) st->backpressure = 0;
  else if (taken > st->taken) st->taken = taken;
  maybe_resume(st);
  pthread_mutex_unlock(&st->mu);
}

void cray__stream_abandon(cray__stream *st) {
  pthread_mutex_lock(&st->mu);
  if (st->took && st->backpressure) st->took(st->hook_ctx, st, SIZE_MAX);
  st->backpressure = 0;
  signal_slot(st, &st->resume);
  pthread_mutex_unlock(&st->mu);
}

int cray__stream_next(cray__stream *st, cray__entry **item, cray__entry **news) {
  pthread_mutex_lock(&st->mu);
  int rc;
  if (st->len) {
    *item = st->queue[st->head++];
    st->len--;
    st->taken++;
    maybe_resume(st);
    /* Its producer pauses on another rank against the count told: told at least every
     * half bound, and at once when nothing is left here to take. */
    if (st->took && st->backpressure &&
        (st->taken - st->reported >= (st->backpressure + 1) / 2 || !st->len)) {
      st->reported = st->taken;
      st->took(st->hook_ctx, st, st->taken);
    }
    rc = 1;
  } else if (st->ended) {
    rc = -1;
  } else if (st->news) {
    cray__store_retain(st->news);
    *news = st->news;
    rc = 0;
  } else {
    rc = (*news = new_signal(st, &st->news)) ? 0 : CRAY_ENOMEM;
  }
  pthread_mutex_unlock(&st->mu);
  return rc;
}
