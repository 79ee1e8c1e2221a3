/*
 * store_internal.h: what store.c (the map, counts, pins) and evict.c (the spill thread,
 * the memory budget) share. Nothing outside those two files includes it.
 *
 * Memory in use is counted per shard (`bytes`, under the shard lock, exact) and, for the
 * decisions that cannot take 64 locks, in `resident`: the sum over shards of their bytes
 * rounded down to GRANULE. A shard touches `resident` only when its count crosses a
 * granule, so small puts rarely write the shared line, and the sum is short of the truth
 * by less than NSHARDS * GRANULE (1 MiB).
 *
 * A task's arguments (cray__store_count_bytes, twice a call) are counted without a lock,
 * by the thread that makes or frees them, in a slot of its own (`credits`): `bytes`, its
 * net count, which cray__store_stats sums, and `credit`, bytes drawn into `resident` in
 * whole granules ahead of use and not used yet. A thread draws when its credit runs out and
 * gives back when it passes two granules, leaving one to two; so `resident` is never
 * short of the arguments' bytes and is over them by less than 2 * GRANULE (32 KiB) for each
 * thread that counted some. Threads past the first NCREDITS - 1 share slot 0, under
 * `credit_mu`.
 */
#ifndef CRAY_STORE_INTERNAL_H
#define CRAY_STORE_INTERNAL_H

#include <pthread.h>

#include "alloc.h"
#include "bigmem.h"
#include "id.h"
#include "spill.h"
#include "store.h"

#define NSHARDS 64
#define GRANULE_SHIFT 14
#define GRANULE ((int64_t)1 << GRANULE_SHIFT)

/* The direct map (store.c): an id made here, (home, sequence, index), is found in slot
 * `sequence % PAGE_SLOTS` of the page for `sequence / PAGE_SLOTS`. Pages go round the
 * shards (page number % NSHARDS) and each shard finds its own through `top`, by page
 * number / NSHARDS. A slot heads the chain of the entries of that sequence (a task's
 * returns share one), usually one entry. */
#define PAGE_BITS 9
#define PAGE_SLOTS (1u << PAGE_BITS)
#define SEQ_BITS 36 /* sequences past 2^36 (never made here) are hashed */

typedef struct cray__page {
  cray__entry *slot[PAGE_SLOTS];
  size_t live; /* entries in its chains: at 0 the page goes */
} cray__page;

#define NCREDITS 64

typedef struct credit {
  _Alignas(CRAY__LINE) _Atomic int64_t bytes; /* written by its thread, read by stats */
  int64_t credit; /* its thread's alone */
} credit;

typedef struct shard {
  _Alignas(CRAY__LINE) pthread_mutex_t mu; /* each shard on lines of its own */
  pthread_cond_t restored; /* readers waiting for another reader's restore */
  cray__page **top;        /* the direct map's pages of this shard; NULL where none */
  size_t ntop;
  cray__page *spare;       /* an empty page kept for the next one needed */
  cray__entry **buckets;   /* the hash of the other ids (other ranks', read from outside) */
  size_t nbuckets, hashed; /* hashed: the entries in the hash */
  cray__entry **old;       /* while the hash grows, the table before; NULL otherwise */
  size_t nold, moved;      /* its size, and how many of its buckets moved to `buckets` */
  size_t count;            /* entries in all */
  size_t hand; /* the next chain the spill thread looks at (cray__shard_chain) */
  uint64_t bytes, puts, frees;
  uint64_t disk_objects, disk_bytes, restores;
} shard;

struct cray__store {
  shard shards[NSHARDS];
  uint64_t home; /* the ids' hi made here (cray__store_set_home): the direct map's */
  uint64_t budget;
  _Atomic uint64_t resident; /* see above */
  _Atomic uint64_t peak;     /* the most `resident` has been */
  uint64_t generation;       /* this store's number among all made: a thread's slot is
                              * for the store of the number it holds */
  _Atomic unsigned ncredits; /* the slots handed out past slot 0 */
  pthread_mutex_t credit_mu; /* slot 0's */
  credit credits[NCREDITS];
  cray__bigmem big;
  void (*actor_gone)(void *ctx, void *actor); /* cray__store_on_actor_gone */
  void *actor_ctx;
  void (*remote_gone)(void *ctx, const cray_id *id); /* cray__store_on_remote_gone */
  void *remote_ctx;
  void (*remote_wanted)(void *ctx, const cray_id *id); /* cray__store_on_remote_wanted */
  void *wanted_ctx;

  /* Spilling (evict.c); unused while spill is NULL. */
  cray__spill *spill;
  uint64_t hard; /* reserve waits above this */
  uint64_t low;  /* a spill run stops at this */
  pthread_t thread;
  pthread_mutex_t mu; /* guards the fields below; taken after a shard lock, never before */
  int running;         /* the thread is started, on first need (evict.c) */
  pthread_cond_t wake; /* the spill thread sleeps here */
  pthread_cond_t room; /* reserve waits here */
  _Atomic int kicked;  /* the spill thread was woken for memory past the budget */
  _Atomic int stop;
  uint64_t sweep_req, sweep_done; /* runs asked for by reserve, and the last one done */
  int stalled;       /* the last run could not reach its target */
  double stalled_at; /* when: runs for the budget alone pause a while after a stall */
  int full_err;      /* the last write's error (0: none), see spill.h */
  double full_at;    /* when: writes are tried again a while later */
  size_t waiting;    /* threads in reserve */
  uint64_t want;     /* the largest size they wait for */
  cray__spill_item *dead; /* copies to delete from disk (id and length) */
  size_t ndead, dead_cap;
  double dead_at;    /* when deletes that failed are tried again */
  unsigned hand; /* the shard the clock hand is in; the spill thread's */
};

/* The id is in the direct map: made here, with a sequence in range. */
static inline int cray__id_direct(const cray__store *s, const cray_id *id) {
  return id->hi == s->home && !(id->lo >> (CRAY__ID_INDEX_BITS + SEQ_BITS));
}

static inline uint64_t cray__id_page(const cray_id *id) {
  return id->lo >> (CRAY__ID_INDEX_BITS + PAGE_BITS);
}

static inline shard *cray__shard_of(cray__store *s, const cray_id *id) {
  return &s->shards[(cray__id_direct(s, id) ? cray__id_page(id) : cray__id_hash(id)) % NSHARDS];
}

/* The shard's chains, under its lock: the direct map's slots, page by page, then the hash
 * buckets, then the old table's while the hash grows. Position i < cray__shard_nchains(sh)
 * heads one chain (linked by `next`). */
static inline size_t cray__shard_nchains(const shard *sh) {
  return sh->ntop * PAGE_SLOTS + sh->nbuckets + (sh->old ? sh->nold : 0);
}

static inline cray__entry *cray__shard_chain(const shard *sh, size_t i) {
  if (i >= sh->ntop * PAGE_SLOTS + sh->nbuckets)
    return sh->old[i - sh->ntop * PAGE_SLOTS - sh->nbuckets];
  if (i >= sh->ntop * PAGE_SLOTS) return sh->buckets[i - sh->ntop * PAGE_SLOTS];
  const cray__page *p = sh->top[i >> PAGE_BITS];
  return p ? p->slot[i & (PAGE_SLOTS - 1)] : NULL;
}

/* The position after i, past the rest of a page that is not there. */
static inline size_t cray__shard_step(const shard *sh, size_t i) {
  if (i < sh->ntop * PAGE_SLOTS && !sh->top[i >> PAGE_BITS]) return (i | (PAGE_SLOTS - 1)) + 1;
  return i + 1;
}

/* Adds delta to the shard's bytes in memory (under its lock) and to `resident` when a
 * granule is crossed, waking the spill thread when that passes the budget. */
void cray__store_add_bytes(cray__store *s, shard *sh, int64_t delta);

/* Under the shard lock: swaps e's blob, known to be on disk, for a husk, when nobody
 * pins it and its blob has exactly `rc` references (the entry's, plus the caller's if it
 * holds one). Returns the old blob, whose references are all used up: the caller frees
 * its shell after unlocking. NULL when it did nothing. */
cray__blob *cray__store_evict_locked(cray__store *s, shard *sh, cray__entry *e, uint32_t rc);

/* From unlink_entry, under the shard lock: an entry that was on disk has gone; its copy
 * must be deleted. */
void cray__store_forget(cray__store *s, const cray_id *id, size_t len);

/* Under `mu`: starts the spill thread if it is not running yet. 0 or CRAY_ESYS. */
int cray__store_spill_start(cray__store *s);
/* evict.c's part of destroy: stops the thread, closes the spill environment. */
void cray__store_spill_stop(cray__store *s);

#endif
