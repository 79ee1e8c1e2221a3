/*
 * store.h: the object store, a map from ids to entries.
 *
 * An entry is PENDING until it resolves, once, to READY (a value blob) or FAILED (an
 * error-object blob). It lives while its reference count is above zero: ObjectRefs in any
 * Lua state, blobs that nest it, tasks that hold it as an argument or as a return they
 * will fill. At zero it leaves the map and its blob is released.
 *
 * Concurrency: the map is split in shards, each with its own mutex, chosen by the id's
 * hash. A shard's lock guards its hash chains, its counters, and for each of its entries
 * the waiter list and the PENDING -> resolved transition. Readers of a resolved entry take
 * no lock: `blob` is written before `state` is published with release order, and never
 * changes after. Waiters are woken under the shard lock (lock order: shard, then the
 * waiter's own lock), so a waiter that unsubscribes under that lock knows no wake is still
 * running for it.
 */
#ifndef CRAY_STORE_H
#define CRAY_STORE_H

#include <stdatomic.h>
#include <stdint.h>

#include "blob.h"
#include "cray.h"

enum { CRAY__PENDING = 0, CRAY__READY = 1, CRAY__FAILED = 2 };

typedef struct cray__waiter cray__waiter;
struct cray__waiter {
  /* Called under the entry's shard lock when a subscribed entry resolves: be brief,
   * take no store lock. */
  void (*wake)(cray__waiter *w);
};

/* One subscription of a waiter to one entry; memory owned by the subscriber. */
typedef struct cray__waitnode {
  struct cray__waitnode *next;
  cray__waiter *waiter;
} cray__waitnode;

typedef struct cray__entry {
  cray_id id;
  _Atomic uint32_t refs;
  _Atomic uint32_t state;
  cray__blob *blob;          /* set once, before state leaves PENDING */
  cray__waitnode *waiters;   /* shard lock */
  void *producer;            /* shard lock: the task that will resolve it, while pending;
                                for an actor's entry, the actor, for good */
  int actor;                 /* an actor's entry (sched/actor.c): set before it is shared */
  struct cray__entry *next;  /* hash chain, shard lock */
} cray__entry;

typedef struct cray__store cray__store;

int cray__store_create(cray__store **out, uint64_t budget);
/* Frees every entry and blob still held. Nothing may use the store afterwards. */
void cray__store_destroy(cray__store *s);

/* A new entry with one reference (the caller's). READY with blob when blob is not NULL
 * (the entry takes over the caller's blob reference), PENDING otherwise.
 * NULL when memory is short or the id is taken. */
cray__entry *cray__store_insert(cray__store *s, cray_id id, cray__blob *blob);

/* The entry for id with one more reference, or NULL when there is none. */
cray__entry *cray__store_lookup(cray__store *s, const cray_id *id);

static inline void cray__store_retain(cray__entry *e) {
  atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
}
void cray__store_release(cray__store *s, cray__entry *e);

static inline uint32_t cray__entry_state(const cray__entry *e) {
  return atomic_load_explicit(&e->state, memory_order_acquire);
}

/* Resolves a PENDING entry with blob (taking over the caller's blob reference) and wakes
 * its waiters. CRAY_EINVAL when it was already resolved (the blob is left to the caller). */
int cray__store_resolve(cray__store *s, cray__entry *e, cray__blob *blob, int failed);

/* While e is pending, calls fn(e->producer, arg) under e's shard lock and returns 1;
 * returns 0 when e is resolved, has no producer, or is an actor's entry. */
int cray__store_with_producer(cray__store *s, cray__entry *e, void (*fn)(void *producer, void *arg),
                              void *arg);

/* Sets *out to e's producer (NULL when resolved or none) and returns 1, or returns 0
 * when e's shard lock is busy: for looking without waiting (runtime/deadlock.c). */
int cray__store_try_producer(cray__store *s, cray__entry *e, void **out);

/* Subscribes node (with node->waiter set) to e: 0 when subscribed, 1 when e is already
 * resolved (nothing subscribed). */
int cray__store_subscribe(cray__store *s, cray__entry *e, cray__waitnode *node);
/* Removes node if it is still subscribed. After this returns, no wake runs for it. */
void cray__store_unsubscribe(cray__store *s, cray__entry *e, cray__waitnode *node);

/* Calls gone(ctx, e->producer) when an actor's entry is freed: its last handle went.
 * Runs on the thread that released it, with no store lock held. */
void cray__store_on_actor_gone(cray__store *s, void (*gone)(void *ctx, void *actor), void *ctx);

void cray__store_stats(cray__store *s, cray_store_stats *out);

#endif
