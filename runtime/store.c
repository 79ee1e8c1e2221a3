/*
 * store.c: see store.h for the contract and the locking rules.
 *
 * Each shard is a chained hash table of entries (the chain link lives in the entry), grown
 * by doubling. Counters live in the shards, updated under their locks, and are summed by
 * cray__store_stats, so no counter is a shared hot cache line.
 *
 * Freeing is iterative: releasing an entry releases its blob, which releases the entries
 * nested in it, and so on. A long chain of nested refs would recurse that deep, so a
 * thread already freeing queues further dead entries on a thread-local list (linked
 * through `next`, free once the entry left its chain) and frees them in a loop.
 */
#include "store.h"

#include <pthread.h>

#include "alloc.h"
#include "id.h"

#define NSHARDS 64
#define MIN_BUCKETS 16

typedef struct shard {
  pthread_mutex_t mu;
  cray__entry **buckets;
  size_t nbuckets, count;
  uint64_t bytes, puts, frees;
  char pad[64];
} shard;

struct cray__store {
  shard shards[NSHARDS];
  uint64_t budget;
  void (*actor_gone)(void *ctx, void *actor);
  void *actor_ctx;
};

static inline shard *shard_of(cray__store *s, const cray_id *id) {
  return &s->shards[cray__id_hash(id) % NSHARDS];
}

static inline size_t bucket_of(const shard *sh, const cray_id *id) {
  return (cray__id_hash(id) >> 6) & (sh->nbuckets - 1);
}

int cray__store_create(cray__store **out, uint64_t budget) {
  cray__store *s = cray__calloc(1, sizeof *s);
  if (!s) return CRAY_ENOMEM;
  s->budget = budget;
  for (int i = 0; i < NSHARDS; i++) {
    shard *sh = &s->shards[i];
    sh->buckets = cray__calloc(MIN_BUCKETS, sizeof *sh->buckets);
    if (!sh->buckets) {
      while (i-- > 0) cray__free(s->shards[i].buckets);
      cray__free(s);
      return CRAY_ENOMEM;
    }
    sh->nbuckets = MIN_BUCKETS;
    pthread_mutex_init(&sh->mu, NULL);
  }
  *out = s;
  return 0;
}

/* Entries hold blobs that hold other entries, and several entries may share a blob (a
 * failed task's error): drop each entry's blob reference without following nested refs
 * (every entry goes anyway), then free every entry. */
void cray__store_destroy(cray__store *s) {
  for (int i = 0; i < NSHARDS; i++) {
    shard *sh = &s->shards[i];
    for (size_t b = 0; b < sh->nbuckets; b++)
      for (cray__entry *e = sh->buckets[b]; e; e = e->next)
        if (e->blob && atomic_fetch_sub(&e->blob->rc, 1) == 1) cray__free(e->blob);
  }
  for (int i = 0; i < NSHARDS; i++) {
    shard *sh = &s->shards[i];
    for (size_t b = 0; b < sh->nbuckets; b++) {
      cray__entry *e = sh->buckets[b];
      while (e) {
        cray__entry *next = e->next;
        cray__free(e);
        e = next;
      }
    }
    cray__free(sh->buckets);
    pthread_mutex_destroy(&sh->mu);
  }
  cray__free(s);
}

static void grow(shard *sh) {
  size_t n = sh->nbuckets * 2;
  cray__entry **nb = cray__calloc(n, sizeof *nb);
  if (!nb) return; /* longer chains, still correct */
  for (size_t b = 0; b < sh->nbuckets; b++) {
    cray__entry *e = sh->buckets[b];
    while (e) {
      cray__entry *next = e->next;
      size_t i = (cray__id_hash(&e->id) >> 6) & (n - 1);
      e->next = nb[i];
      nb[i] = e;
      e = next;
    }
  }
  cray__free(sh->buckets);
  sh->buckets = nb;
  sh->nbuckets = n;
}

cray__entry *cray__store_insert(cray__store *s, cray_id id, cray__blob *blob) {
  cray__entry *e = cray__malloc(sizeof *e);
  if (!e) return NULL;
  e->id = id;
  atomic_init(&e->refs, 1);
  atomic_init(&e->state, blob ? CRAY__READY : CRAY__PENDING);
  e->blob = blob;
  e->waiters = NULL;
  e->producer = NULL;
  e->actor = 0;
  shard *sh = shard_of(s, &id);
  pthread_mutex_lock(&sh->mu);
  size_t b = bucket_of(sh, &id);
  for (cray__entry *o = sh->buckets[b]; o; o = o->next) {
    if (cray__id_eq(&o->id, &id)) {
      pthread_mutex_unlock(&sh->mu);
      cray__free(e);
      return NULL;
    }
  }
  e->next = sh->buckets[b];
  sh->buckets[b] = e;
  sh->count++;
  sh->puts++;
  if (blob) sh->bytes += blob->len;
  if (sh->count > sh->nbuckets) grow(sh);
  pthread_mutex_unlock(&sh->mu);
  return e;
}

cray__entry *cray__store_lookup(cray__store *s, const cray_id *id) {
  shard *sh = shard_of(s, id);
  pthread_mutex_lock(&sh->mu);
  cray__entry *e = sh->buckets[bucket_of(sh, id)];
  while (e && !cray__id_eq(&e->id, id)) e = e->next;
  if (e) {
    /* A count of zero means it is being freed: it is gone. */
    uint32_t n = atomic_load_explicit(&e->refs, memory_order_relaxed);
    do {
      if (n == 0) {
        e = NULL;
        break;
      }
    } while (!atomic_compare_exchange_weak_explicit(&e->refs, &n, n + 1, memory_order_acquire,
                                                    memory_order_relaxed));
  }
  pthread_mutex_unlock(&sh->mu);
  return e;
}

static _Thread_local struct {
  int busy;
  cray__entry *dead;
} freeing;

/* Takes e out of its chain; e's count has reached zero. */
static void unlink_entry(cray__store *s, cray__entry *e) {
  shard *sh = shard_of(s, &e->id);
  pthread_mutex_lock(&sh->mu);
  cray__entry **pp = &sh->buckets[bucket_of(sh, &e->id)];
  while (*pp != e) pp = &(*pp)->next;
  *pp = e->next;
  sh->count--;
  sh->frees++;
  if (e->blob) sh->bytes -= e->blob->len;
  pthread_mutex_unlock(&sh->mu);
}

void cray__store_release(cray__store *s, cray__entry *e) {
  if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 1) return;
  unlink_entry(s, e);
  e->next = freeing.dead;
  freeing.dead = e;
  if (freeing.busy) return;
  freeing.busy = 1;
  while ((e = freeing.dead)) {
    freeing.dead = e->next;
    if (e->blob) cray__blob_release(s, e->blob);
    if (e->actor && s->actor_gone) s->actor_gone(s->actor_ctx, e->producer);
    cray__free(e);
  }
  freeing.busy = 0;
}

int cray__store_resolve(cray__store *s, cray__entry *e, cray__blob *blob, int failed) {
  shard *sh = shard_of(s, &e->id);
  pthread_mutex_lock(&sh->mu);
  if (atomic_load_explicit(&e->state, memory_order_relaxed) != CRAY__PENDING) {
    pthread_mutex_unlock(&sh->mu);
    return CRAY_EINVAL;
  }
  e->blob = blob;
  e->producer = NULL;
  sh->bytes += blob->len;
  atomic_store_explicit(&e->state, failed ? CRAY__FAILED : CRAY__READY, memory_order_release);
  cray__waitnode *w = e->waiters;
  e->waiters = NULL;
  while (w) {
    cray__waitnode *next = w->next; /* the node may be gone once woken */
    w->waiter->wake(w->waiter);
    w = next;
  }
  pthread_mutex_unlock(&sh->mu);
  return 0;
}

int cray__store_with_producer(cray__store *s, cray__entry *e, void (*fn)(void *producer, void *arg),
                              void *arg) {
  shard *sh = shard_of(s, &e->id);
  pthread_mutex_lock(&sh->mu);
  void *p = atomic_load_explicit(&e->state, memory_order_relaxed) == CRAY__PENDING && !e->actor
                ? e->producer
                : NULL;
  if (p) fn(p, arg);
  pthread_mutex_unlock(&sh->mu);
  return p != NULL;
}

int cray__store_try_producer(cray__store *s, cray__entry *e, void **out) {
  shard *sh = shard_of(s, &e->id);
  if (pthread_mutex_trylock(&sh->mu) != 0) return 0;
  *out = atomic_load_explicit(&e->state, memory_order_relaxed) == CRAY__PENDING ? e->producer
                                                                                : NULL;
  pthread_mutex_unlock(&sh->mu);
  return 1;
}

int cray__store_subscribe(cray__store *s, cray__entry *e, cray__waitnode *node) {
  shard *sh = shard_of(s, &e->id);
  pthread_mutex_lock(&sh->mu);
  if (atomic_load_explicit(&e->state, memory_order_relaxed) != CRAY__PENDING) {
    pthread_mutex_unlock(&sh->mu);
    return 1;
  }
  node->next = e->waiters;
  e->waiters = node;
  pthread_mutex_unlock(&sh->mu);
  return 0;
}

void cray__store_unsubscribe(cray__store *s, cray__entry *e, cray__waitnode *node) {
  shard *sh = shard_of(s, &e->id);
  pthread_mutex_lock(&sh->mu);
  for (cray__waitnode **pp = &e->waiters; *pp; pp = &(*pp)->next) {
    if (*pp == node) {
      *pp = node->next;
      break;
    }
  }
  pthread_mutex_unlock(&sh->mu);
}

void cray__store_on_actor_gone(cray__store *s, void (*gone)(void *ctx, void *actor), void *ctx) {
  s->actor_gone = gone;
  s->actor_ctx = ctx;
}

void cray__store_stats(cray__store *s, cray_store_stats *out) {
  *out = (cray_store_stats){.budget = s->budget};
  for (int i = 0; i < NSHARDS; i++) {
    shard *sh = &s->shards[i];
    pthread_mutex_lock(&sh->mu);
    out->objects += sh->count;
    out->bytes += sh->bytes;
    out->puts += sh->puts;
    out->frees += sh->frees;
    pthread_mutex_unlock(&sh->mu);
  }
}
