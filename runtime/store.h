/*
 * store.h: the object store, a map from ids to entries, and its memory budget.
 *
 * An entry is PENDING until it resolves, once, to READY (a value blob) or FAILED (an
 * error-object blob). It lives while its reference count is above zero: ObjectRefs in any
 * Lua state, blobs that nest it, tasks that hold it as an argument or as a return they
 * will fill. At zero it leaves the map, its blob is released, and its copy on disk, if it
 * has one, is deleted.
 *
 * Memory: the bytes of the resolved blobs in memory are counted against the budget. Past
 * it, the spill thread (evict.c) writes cold, unpinned entries to the spill environment
 * (spill.h) and swaps their blob for a husk (header and nested refs, no bytes);
 * cray__store_pin reads them back. Puts call cray__store_reserve before they allocate: it
 * returns at once below the hard limit (budget * 1.5), waits for the spill thread above
 * it, and fails only when nothing more can leave memory.
 *
 * Concurrency: the map is split in shards, each with its own mutex, chosen by the id's
 * sequence (ids made here) or hash (others). A shard's lock guards its chains, its
 * counters, and for each of its entries the waiter list, the PENDING -> resolved
 * transition, `on_disk`, `restoring`, and every change of `stored` (resolving sets it;
 * spilling and restoring swap it).
 *
 * Reading a resolved entry's blob takes a pin, not a lock: cray__store_pin adds one to
 * `pins`, checks `spilled`, and only when it is clear loads `stored`. The spill thread
 * swaps `stored` for a husk (and sets `spilled`) only after moving `pins` from 0 to
 * CRAY__EVICTING, under the shard lock, so a pinned blob stays put; a reader that meets
 * EVICTING or `spilled` retries under the lock, reading the bytes back from disk when
 * they are gone. Restoring does not wait for pins: under the shard lock it stores the
 * new blob, then clears `spilled` (release), and frees the husk after unlocking. That is
 * safe because the fast path never dereferences a husk: it reads `stored` only after
 * seeing `spilled` clear (acquire), which shows it the restored blob, and a pin taken
 * before the eviction would have kept the blob from being swapped. A reader that keeps
 * the blob past its unpin (a view) takes a blob reference while pinned, and the spill
 * thread leaves alone any blob with references beyond its entry's. Every read of
 * `stored` outside the shard lock goes through cray__store_pin.
 *
 * Waiters are woken under the shard lock (lock order: shard, then the waiter's own lock),
 * so a waiter that unsubscribes under that lock knows no wake is still running for it.
 * The spill thread's mutex (evict.c) is taken after a shard lock, never before one.
 */
#ifndef CRAY_STORE_H
#define CRAY_STORE_H

#include <stdatomic.h>
#include <stdint.h>

#include "bigmem.h"
#include "blob.h"
#include "cray.h"

enum { CRAY__PENDING = 0, CRAY__READY = 1, CRAY__FAILED = 2 };

/* Set in `pins` while the spill thread swaps `stored`. */
#define CRAY__EVICTING 0x80000000u

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

typedef struct cray__entry { /* 72 bytes: counts, then flags, then pointers */
  cray_id id;
  _Atomic uint32_t refs;
  _Atomic uint32_t pins;        /* readers of `stored` right now, | CRAY__EVICTING */
  _Atomic uint32_t api_refs;    /* of `refs`, those handed to C callers (cray__store_hand_out) */
  _Atomic uint32_t site;        /* who made it (runtime/sites.h), 0 when unknown */
  _Atomic uint8_t state;        /* CRAY__PENDING, READY or FAILED */
  _Atomic uint8_t hot;          /* read or written since the spill thread last passed */
  _Atomic uint8_t spilled;      /* `stored` is a husk; written under the shard lock */
  uint8_t on_disk;              /* a copy is in the spill environment; shard lock */
  uint8_t restoring;            /* a reader is reading it back from disk; shard lock */
  uint8_t actor;                /* CRAY__ENTRY_ACTOR: an actor's entry (runtime/actor.c);
                                   CRAY__ENTRY_REMOTE_ACTOR: another rank's actor, whose calls
                                   go there (cluster.c); set before it is shared */
  uint8_t remote;               /* another rank's object held here (cluster.c): set by the
                                   thread that made it before it drops its reference */
  _Atomic uint8_t unpulled;     /* a remote entry whose value nothing asked for yet: the
                                   first subscribe or cray__store_want asks (cluster.c) */
  _Atomic(cray__blob *) stored; /* set before state leaves PENDING; read by pinning */
  struct cray__entry *next;     /* chain (store.c), shard lock */
  /* Last, as only an entry that can be pending has them: one made READY with its value
   * inside (cray__store_insert_inline) has its blob's header here instead. */
  cray__waitnode *waiters;      /* shard lock */
  void *producer;               /* shard lock: the task that will resolve it, while pending;
                                   for an actor's entry, the actor, for good */
} cray__entry;

enum { CRAY__ENTRY_ACTOR = 1, CRAY__ENTRY_REMOTE_ACTOR = 2 };

typedef struct cray__store cray__store;
struct cray__spill;

/* A store with a budget of `budget` bytes in memory, not spilling yet. */
int cray__store_create(cray__store **out, uint64_t budget);
/* Starts the spill thread, writing to sp; the store owns sp from then on (on failure
 * too) and closes it in cray__store_destroy. Without this call nothing is spilled and
 * cray__store_reserve never waits. */
int cray__store_spill_to(cray__store *s, struct cray__spill *sp);
/* Removes what the spill thread wrote to disk, for a runtime that is abandoned
 * (cray__spill_abandon); the store is left as it is. */
void cray__store_spill_abandon(cray__store *s);
/* Stops the spill thread and frees every entry and blob still held; blobs that views
 * still hold become orphans. Nothing may use the store afterwards. */
void cray__store_destroy(cray__store *s);

/* Ids with this hi are the ones made here (the runtime's, cray__id_new): the store finds
 * them by direct index, and hashes any other. Set before the store is shared; any id works
 * either way, only faster or slower. */
void cray__store_set_home(cray__store *s, uint64_t hi);

/* A new entry with one reference (the caller's). READY with blob when blob is not NULL
 * (the entry takes over the caller's blob reference), PENDING otherwise.
 * NULL when memory is short or the id is taken. */
cray__entry *cray__store_insert(cray__store *s, cray_id id, cray__blob *blob);

/* Values this small, with no nested refs, live inside their entry: one allocation of
 * malloc's 112-byte class holds the entry up to `waiters`, the blob's header and the
 * bytes. */
#define CRAY__INLINE_MAX 8

/* cray__store_insert of a READY entry whose blob (CRAY__BLOB_INLINE) is made inside it
 * from data[0..len), len <= CRAY__INLINE_MAX. Such a blob is never spilled; the
 * allocation goes with the blob's last reference, which the entry drops when it goes (a
 * view may keep the blob, and with it the memory, longer). NULL as cray__store_insert. */
cray__entry *cray__store_insert_inline(cray__store *s, cray_id id, const uint8_t *data,
                                       size_t len, uint32_t count, uint32_t flags);
/* Frees the allocation of an entry whose CRAY__BLOB_INLINE blob is b (blob.c). */
void cray__store_free_inline(cray__blob *b);

/* The entry for id with one more reference, or NULL when there is none. */
cray__entry *cray__store_lookup(cray__store *s, const cray_id *id);

static inline void cray__store_retain(cray__entry *e) {
  atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
}
/* Counts one reference the caller holds to e as handed to a C API caller, who may drop
 * it with cray_release; cray_release drops no other (runtime.c). */
static inline void cray__store_hand_out(cray__entry *e) {
  atomic_fetch_add_explicit(&e->api_refs, 1, memory_order_relaxed); /* a count only */
}
void cray__store_release(cray__store *s, cray__entry *e);
/* Drops n references the caller holds to e at once, as n calls of cray__store_release
 * would, with one atomic operation on its count. */
void cray__store_release_n(cray__store *s, cray__entry *e, uint32_t n);
/* Drops one reference to each of v[0..n) at once, as n calls of cray__store_release would:
 * the entries are prefetched ahead of their counts, and those at zero leave the map one
 * shard lock for each run of them in one shard. Overwrites v. */
void cray__store_release_all(cray__store *s, cray__entry **v, size_t n);

static inline uint32_t cray__entry_state(const cray__entry *e) {
  return atomic_load_explicit(&e->state, memory_order_acquire);
}

/* Resolves a PENDING entry with blob (taking over the caller's blob reference) and wakes
 * its waiters. CRAY_EINVAL when it was already resolved (the blob is left to the caller). */
int cray__store_resolve(cray__store *s, cray__entry *e, cray__blob *blob, int failed);

/* Sets e's producer, under its shard lock as every access to it is. */
void cray__store_set_producer(cray__store *s, cray__entry *e, void *producer);

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

/* Calls wanted(ctx, &e->id) once for an entry flagged `unpulled`, on the thread that
 * first subscribes to it or passes it to cray__store_want, with no store lock held. Set
 * before the store is shared. */
void cray__store_on_remote_wanted(cray__store *s, void (*wanted)(void *ctx, const cray_id *id),
                                  void *ctx);
/* Something will look at pending e without subscribing (a wait with no time to wait):
 * an `unpulled` entry is asked for now. */
void cray__store_want(cray__store *s, cray__entry *e);

/* Calls gone(ctx, &e->id) when an entry flagged `remote` is freed. Runs on the thread
 * that released it, with no store lock held. Set before the store is shared. */
void cray__store_on_remote_gone(cray__store *s, void (*gone)(void *ctx, const cray_id *id),
                                void *ctx);

/* Calls gone(ctx, e->producer) when an actor's entry is freed: its last handle went.
 * Runs on the thread that released it, with no store lock held. */
void cray__store_on_actor_gone(cray__store *s, void (*gone)(void *ctx, void *actor), void *ctx);

/* ---- reading a resolved entry's blob ---- */

int cray__store_pin_slow(cray__store *s, cray__entry *e, cray__blob **out);

/* A pause between taking the pin and the reads that follow it: nothing, except in a
 * test that defines it before including this header to widen that window. */
#ifndef CRAY__STORE_PIN_PAUSE
#define CRAY__STORE_PIN_PAUSE(e) ((void)0)
#endif

/* Pins the blob of a resolved entry in memory (reading it back from disk if it was
 * spilled) and sets *out: valid until cray__store_unpin, or longer with a blob reference
 * taken meanwhile. The caller holds a reference to e. 0, or CRAY_ENOMEM / CRAY_ESYS /
 * CRAY_EBADBLOB when the bytes cannot be read back (the object stays on disk). A pin
 * that is never dropped (a Lua error thrown past it) only keeps e in memory. */
static inline int cray__store_pin(cray__store *s, cray__entry *e, cray__blob **out) {
  /* acquire: a finished eviction's swap is seen (it cleared EVICTING with release) */
  uint32_t p = atomic_fetch_add_explicit(&e->pins, 1, memory_order_acquire);
  CRAY__STORE_PIN_PAUSE(e);
  /* acquire: when a restore cleared it, `stored` below is the restored blob */
  if (!(p & CRAY__EVICTING) && !atomic_load_explicit(&e->spilled, memory_order_acquire)) {
    /* acquire: as every reader of a blob, see the bytes written before it was stored */
    cray__blob *b = atomic_load_explicit(&e->stored, memory_order_acquire);
    if (!atomic_load_explicit(&e->hot, memory_order_relaxed))
      atomic_store_explicit(&e->hot, 1, memory_order_relaxed);
    *out = b;
    return 0;
  }
  return cray__store_pin_slow(s, e, out);
}

static inline void cray__store_unpin(cray__entry *e) {
  atomic_fetch_sub_explicit(&e->pins, 1, memory_order_release);
}

/* ---- memory ---- */

/* Room for a new blob of len bytes: returns at once while memory is under the hard limit;
 * above it, waits while the spill thread can make room. When it cannot (the spill space
 * is full, or what is in memory is pinned), a caller with may_fail gets CRAY_ENOMEM
 * unless memory is within the budget (an object bigger than the rest of the budget is
 * let in); restores pass may_fail 0 and are always let in. */
int cray__store_reserve(cray__store *s, size_t len, int may_fail);
/* Counts delta bytes held outside the entries (a task's arguments) in the store's memory:
 * plus their length when made, minus it when freed, on any thread. Takes no lock (see
 * store_internal.h). */
void cray__store_count_bytes(cray__store *s, int64_t delta);
/* The message for a reserve of len that failed: budget, usage, spill directory. */
void cray__store_describe_full(cray__store *s, size_t len, char *buf, size_t n);
/* Waits until the spill thread is idle: deletes written, memory under the budget or
 * nothing more to spill. For tests. */
void cray__store_spill_sync(cray__store *s);
/* The spill directory, or NULL when the store does not spill. */
const char *cray__store_spill_dir(cray__store *s);

/* The store's cache of big blocks (NULL when s is). */
cray__bigmem *cray__store_bigmem(cray__store *s);

void cray__store_stats(cray__store *s, cray_store_stats *out);

#endif
