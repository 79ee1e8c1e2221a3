/*
 * stream.h: the values a streaming task yields, between it and the one who iterates.
 *
 * A task submitted with num_returns = "streaming" has a stream: each value its body
 * yields becomes an item, a ready entry of its own (id: the task's id with index k + 1 for
 * item k, 1-based; index 1 is the task's one return, which resolves when it ends). The
 * stream holds each item until the consumer takes it, in order.
 *
 * The consumer never waits on the stream itself: when the next item is not there it gets
 * `news`, a pending entry that the producer resolves with its next item or its end, and
 * waits for it (or for the task's return, which resolves however the task ends, even
 * when it never ran). The producer pauses when it is more than `backpressure` items ahead
 * of the consumer: it waits on `resume`, which the consumer resolves when it takes enough.
 *
 * Across ranks (runtime/cluster.c) the task runs on one rank and its consumer iterates
 * on another, each side with a stream of its own under the same ids. The producer's
 * side hands each item to `forward` (which sends it to the consumer's rank) instead of
 * queueing it, and counts as taken what the consumer's side reported (cray__stream_taken);
 * the consumer's side is put the items as they arrive, never pauses them (its producer
 * pauses on its own rank), and tells `took` of its takes while a bound applies.
 *
 * Locks: `mu` guards every field but the reference count; it is taken before no other
 * lock except the store's (entries are resolved under it: resolving takes only the
 * entry's shard lock and wakes waiters through the worker queues, which never come back
 * here). Two references: the task's and the consumer's; the last frees the items left.
 */
#ifndef CRAY_STREAM_H
#define CRAY_STREAM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "id.h"
#include "store.h"

typedef struct cray__stream cray__stream;
struct cray__stream {
  _Atomic int rc;
  pthread_mutex_t mu;
  cray__store *store;
  cray__idgen *ids;      /* for the ids of news and resume */
  cray_id base;          /* the task's id: item k is cray__id_with_index(base, k + 1) */
  cray__entry **queue;   /* the items not taken, queue[head .. head + len) */
  size_t head, len, cap;
  size_t produced, taken;
  size_t backpressure;   /* 0: no bound */
  int ended;             /* the producer returned or raised: no more items */
  cray__entry *news;     /* pending, resolved at the next item or the end; or NULL */
  cray__entry *resume;   /* pending while the producer is paused; or NULL */
  /* Across ranks (above); each NULL in one process. forward takes the item's reference
   * and returns 0, or nonzero to have it queued here (its rank has left the job). took
   * hears the count taken, or SIZE_MAX when the consumer is gone. Both run under mu. */
  int (*forward)(void *ctx, cray__stream *st, cray__entry *item);
  void (*took)(void *ctx, cray__stream *st, size_t taken);
  void *hook_ctx;
  size_t reported;       /* the consumer's side: the count last told to took */
};

/* A new stream with two references, for items of the task with id `base`; NULL when
 * memory is short. */
cray__stream *cray__stream_new(cray__store *store, cray__idgen *ids, cray_id base,
                               size_t backpressure);
void cray__stream_release(cray__stream *st);
/* Drops a reference after the store was destroyed (its entries went with it). */
void cray__stream_release_orphan(cray__stream *st);

/* The producer's side. Adds the next item, holding `blob` (the stream takes the caller's
 * reference). Returns 0; 1 when the producer must pause, with *resume a pending entry
 * (one reference for the caller) to wait for; CRAY_ENOMEM. */
int cray__stream_put(cray__stream *st, cray__blob *blob, cray__entry **resume);
/* The producer returned or raised: no more items. */
void cray__stream_end(cray__stream *st);

/* Makes st one side of a stream across ranks (above): the producer's with forward, the
 * consumer's with took. */
void cray__stream_link(cray__stream *st, int (*forward)(void *ctx, cray__stream *st,
                                                        cray__entry *item),
                       void (*took)(void *ctx, cray__stream *st, size_t taken), void *ctx);
/* The bound a producer pauses at now (0: none). */
size_t cray__stream_bound(cray__stream *st);
/* The producer's side: the consumer has taken `taken` items (SIZE_MAX: it is gone). */
void cray__stream_taken(cray__stream *st, size_t taken);

/* The consumer is gone: the producer no longer pauses, and goes on if it was paused. */
void cray__stream_abandon(cray__stream *st);

/* The consumer's side. Takes the next item: returns 1 and *item (the caller's reference);
 * or 0 and *news (a pending entry, one reference for the caller, resolved at the next item
 * or the end) when there is none yet; or -1 when the stream ended and every item was
 * taken; CRAY_ENOMEM. */
int cray__stream_next(cray__stream *st, cray__entry **item, cray__entry **news);

#endif
