/*
 * store_internal.h: what store.c (the map, counts, pins) and evict.c (the spill thread,
 * the memory budget) share. Nothing outside those two files includes it.
 *
 * Memory in use is counted per shard (`bytes`, under the shard lock, exact) and, for the
 * decisions that cannot take 64 locks, in `resident`: the sum over shards of their bytes
 * rounded down to GRANULE. A shard touches `resident` only when its count crosses a
 * granule, so small puts rarely write the shared line, and the sum is short of the truth
 * by less than NSHARDS * GRANULE (1 MiB).
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

typedef struct shard {
  _Alignas(CRAY__LINE) pthread_mutex_t mu; /* each shard on lines of its own */
  pthread_cond_t restored; /* readers waiting for another reader's restore */
  cray__entry **buckets;
  size_t nbuckets, count;
  size_t hand; /* the next bucket the spill thread looks at */
  uint64_t bytes, puts, frees;
  uint64_t disk_objects, disk_bytes, restores;
} shard;

struct cray__store {
  shard shards[NSHARDS];
  uint64_t budget;
  _Atomic uint64_t resident; /* see above */
  _Atomic uint64_t peak;     /* the most `resident` has been */
  cray__bigmem big;
  void (*actor_gone)(void *ctx, void *actor); /* cray__store_on_actor_gone */
  void *actor_ctx;
  void (*remote_gone)(void *ctx, const cray_id *id); /* cray__store_on_remote_gone */
  void *remote_ctx;

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

static inline shard *cray__shard_of(cray__store *s, const cray_id *id) {
  return &s->shards[cray__id_hash(id) % NSHARDS];
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
