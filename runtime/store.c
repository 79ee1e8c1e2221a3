/*
 * store.c: the map of entries, their counts, and reading their blobs (pins, restores).
 * See store.h for the contract and the locking rules; evict.c is the other half of the
 * store (the spill thread and the budget), store_internal.h what they share.
 *
 * Ids made here are dense: a thread's block of sequences, and a small index (store.h, id.h).
 * So an entry of ours is found by direct index (store_internal.h): the page of its
 * sequence, then the slot, with no hashing, and the entries a thread makes one after the
 * other sit in neighbouring slots of one page, under one shard lock, so a put touches
 * lines the last put touched. A page goes when its last entry does (each shard keeps one
 * empty page for the next one needed). Ids made elsewhere (other ranks', ids read from
 * outside) go to a chained hash table per shard, grown by doubling a step at a time: while
 * it grows, the old table's buckets not yet moved hold their ids (inserts included), and
 * every operation on a hashed id moves two more, so no operation pays for moving them all.
 * The chain link lives in the entry. Counters live in the shards, updated under their
 * locks, and are summed by cray__store_stats, so no counter is a shared hot cache line.
 *
 * Freeing is iterative: releasing an entry releases its blob, which releases the entries
 * nested in it, and so on. A long chain of nested refs would recurse that deep, so a
 * thread already freeing queues further dead entries on a thread-local list (linked
 * through `next`, free once the entry left its chain) and frees them in a loop.
 */
#include "store_internal.h"

#include <stddef.h>

#include "alloc.h"
#include "slab.h"

#define MIN_BUCKETS 16

static _Atomic uint64_t generations; /* the stores made so far */
static _Thread_local struct {
  uint64_t generation; /* the store `slot` is in */
  credit *slot;
} mine;

_Static_assert(sizeof(cray__entry) <= 72, "an entry keeps to 72 bytes (store.h)");

/* Entries come from slabs of their own (slab.h): made by the million, they are freed with
 * no malloc header and no C library call, and live ones sit on huge pages. Any thread may
 * free one (the last holder of its count, or of its inline blob). An entry with its value
 * inside is a block of inline_slab (below), any other one of entry_slab. */
static cray__slab entry_slab = CRAY__SLAB_INIT(sizeof(cray__entry), 1);

static inline size_t hash_index(const cray_id *id, size_t n) {
  return (cray__id_hash(id) >> 6) & (n - 1);
}

/* The bucket a hashed id is in, or goes in: the old table's while that bucket has not
 * moved yet. */
static inline cray__entry **bucket_of(shard *sh, const cray_id *id) {
  if (sh->old) {
    size_t i = hash_index(id, sh->nold);
    if (i >= sh->moved) return &sh->old[i];
  }
  return &sh->buckets[hash_index(id, sh->nbuckets)];
}

/* Moves two more buckets of a growing hash to the new table. */
static void rehash_step(shard *sh) {
  for (int k = 0; k < 2 && sh->old; k++) {
    cray__entry *e = sh->old[sh->moved];
    while (e) {
      cray__entry *next = e->next, **head = &sh->buckets[hash_index(&e->id, sh->nbuckets)];
      e->next = *head;
      *head = e;
      e = next;
    }
    sh->old[sh->moved] = NULL;
    if (++sh->moved == sh->nold) {
      cray__free(sh->old);
      sh->old = NULL;
    }
  }
}

/* The page of a direct id, NULL when there is none; under the shard lock. */
static inline cray__page *page_of(const shard *sh, const cray_id *id) {
  size_t t = (size_t)(cray__id_page(id) / NSHARDS);
  return t < sh->ntop ? sh->top[t] : NULL;
}

static inline cray__entry **slot_of(cray__page *p, const cray_id *id) {
  return &p->slot[(id->lo >> CRAY__ID_INDEX_BITS) & (PAGE_SLOTS - 1)];
}

/* The head of the chain id belongs in, NULL when it has none (no page); under the lock. */
static cray__entry **chain_of(cray__store *s, shard *sh, const cray_id *id) {
  if (!cray__id_direct(s, id)) return bucket_of(sh, id);
  cray__page *p = page_of(sh, id);
  return p ? slot_of(p, id) : NULL;
}

/* The page for a direct id, made when there is none; NULL when memory is short. */
static cray__page *page_for(shard *sh, const cray_id *id) {
  size_t t = (size_t)(cray__id_page(id) / NSHARDS);
  if (t >= sh->ntop) {
    size_t n = sh->ntop ? sh->ntop * 2 : 16;
    while (n <= t) n *= 2;
    cray__page **top = cray__realloc(sh->top, n * sizeof *top);
    if (!top) return NULL;
    for (size_t i = sh->ntop; i < n; i++) top[i] = NULL;
    sh->top = top;
    sh->ntop = n;
  }
  if (!sh->top[t]) {
    cray__page *p = sh->spare ? sh->spare : cray__calloc(1, sizeof *p);
    if (!p) return NULL;
    sh->spare = NULL;
    sh->top[t] = p;
  }
  return sh->top[t];
}

void cray__store_set_home(cray__store *s, uint64_t hi) { s->home = hi; }

static inline cray__blob *stored(const cray__entry *e) {
  return atomic_load_explicit(&e->stored, memory_order_relaxed);
}

int cray__store_create(cray__store **out, uint64_t budget) {
  cray__store *s = cray__calloc_lines(1, sizeof *s); /* its shards claim lines */
  if (!s) return CRAY_ENOMEM;
  s->budget = s->hard = s->low = budget;
  atomic_init(&s->resident, 0);
  atomic_init(&s->peak, 0);
  atomic_init(&s->kicked, 0);
  s->generation = atomic_fetch_add_explicit(&generations, 1, memory_order_relaxed) + 1;
  pthread_mutex_init(&s->credit_mu, NULL);
  cray__bigmem_init(&s->big, budget / 4);
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
    pthread_cond_init(&sh->restored, NULL);
  }
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->wake, NULL);
  pthread_cond_init(&s->room, NULL);
  *out = s;
  return 0;
}

/* Entries hold blobs that hold other entries, and several entries may share a blob (a
 * failed task's error): drop each entry's blob reference without following nested refs
 * (every entry goes anyway), and free the entry. A blob a view still holds is left to the
 * view, as an orphan (with its entry's allocation, when it lives inside it). */
void cray__store_destroy(cray__store *s) {
  cray__store_spill_stop(s);
  for (int i = 0; i < NSHARDS; i++) {
    shard *sh = &s->shards[i];
    for (size_t c = 0; c < cray__shard_nchains(sh); c = cray__shard_step(sh, c)) {
      cray__entry *e = cray__shard_chain(sh, c);
      while (e) {
        cray__entry *next = e->next;
        cray__blob *blob = stored(e);
        uint32_t flags = blob ? blob->flags : 0;
        if (flags & CRAY__BLOB_SPILLED)
          cray__blob_free_shell(s, blob);
        else if (blob)
          cray__blob_orphan(blob); /* an inline blob's last reference frees e too */
        if (!(flags & CRAY__BLOB_INLINE)) cray__slab_free(&entry_slab, e);
        e = next;
      }
    }
    for (size_t t = 0; t < sh->ntop; t++) cray__free(sh->top[t]);
    cray__free(sh->top);
    cray__free(sh->spare);
    cray__free(sh->old);
    cray__free(sh->buckets);
    pthread_mutex_destroy(&sh->mu);
    pthread_cond_destroy(&sh->restored);
  }
  cray__bigmem_destroy(&s->big);
  pthread_mutex_destroy(&s->mu);
  pthread_mutex_destroy(&s->credit_mu);
  pthread_cond_destroy(&s->wake);
  pthread_cond_destroy(&s->room);
  cray__free(s->dead);
  cray__free(s);
}

/* Starts doubling the hash (rehash_step moves the buckets), once the last growth is done. */
static void grow(shard *sh) {
  while (sh->old) rehash_step(sh);
  size_t n = sh->nbuckets * 2;
  cray__entry **nb = cray__calloc(n, sizeof *nb);
  if (!nb) return; /* longer chains, still correct */
  sh->old = sh->buckets;
  sh->nold = sh->nbuckets;
  sh->moved = 0;
  sh->buckets = nb;
  sh->nbuckets = n;
  sh->hand = 0;
}

/* Adds add, whole granules either way, to `resident`; on the way up, raises the peak and
 * wakes the spill thread when that passes the budget. */
static void settle(cray__store *s, int64_t add) {
  uint64_t now = atomic_fetch_add_explicit(&s->resident, (uint64_t)add, memory_order_relaxed) +
                 (uint64_t)add;
  /* relaxed: a high-water mark, shown only; raised once per granule crossed upwards */
  uint64_t peak = atomic_load_explicit(&s->peak, memory_order_relaxed);
  while (add > 0 && now > peak &&
         !atomic_compare_exchange_weak_explicit(&s->peak, &peak, now, memory_order_relaxed,
                                                memory_order_relaxed)) {
  }
  if (add > 0 && s->spill && now > s->budget &&
      !atomic_load_explicit(&s->kicked, memory_order_relaxed) &&
      !atomic_exchange_explicit(&s->kicked, 1, memory_order_relaxed)) {
    pthread_mutex_lock(&s->mu);
    if (cray__store_spill_start(s) == 0) pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
  }
}

void cray__store_add_bytes(cray__store *s, shard *sh, int64_t delta) {
  uint64_t before = sh->bytes;
  sh->bytes += (uint64_t)delta;
  int64_t granules = (int64_t)(sh->bytes >> GRANULE_SHIFT) - (int64_t)(before >> GRANULE_SHIFT);
  if (granules) settle(s, granules * GRANULE);
}

/* An entry with its value inside (cray__store_insert_inline) is the entry up to
 * `waiters`, which only an entry that can be pending uses, then the blob's header there,
 * then the bytes. */
#define INLINE_AT offsetof(cray__entry, waiters)

static cray__blob *inline_blob(cray__entry *e) { return (cray__blob *)((char *)e + INLINE_AT); }

/* Fills in e, made by the caller for blob (NULL: pending), and links it in. NULL, with e
 * freed, when memory is short or the id is taken. */
static cray__entry *link_new(cray__store *s, cray_id id, cray__entry *e, cray__blob *blob) {
  e->id = id;
  atomic_init(&e->refs, 1);
  atomic_init(&e->state, blob ? CRAY__READY : CRAY__PENDING);
  atomic_init(&e->pins, 0);
  atomic_init(&e->hot, 1);
  e->on_disk = e->restoring = 0;
  atomic_init(&e->spilled, 0);
  atomic_init(&e->stored, blob);
  if (blob != inline_blob(e)) { /* else the blob's header is where these would be */
    e->waiters = NULL;
    e->producer = NULL;
  }
  e->actor = 0;
  e->remote = 0;
  atomic_init(&e->unpulled, 0);
  atomic_init(&e->api_refs, 0);
  atomic_init(&e->site, 0);
  shard *sh = cray__shard_of(s, &id);
  int direct = cray__id_direct(s, &id);
  pthread_mutex_lock(&sh->mu);
  cray__page *p = direct ? page_for(sh, &id) : NULL;
  if (!direct) rehash_step(sh);
  cray__entry **head = direct ? (p ? slot_of(p, &id) : NULL) : bucket_of(sh, &id);
  /* A fresh id's chain is empty, or holds its task's other returns: a short walk. */
  for (cray__entry *o = head ? *head : NULL; o; o = o->next) {
    if (cray__id_eq(&o->id, &id)) {
      head = NULL;
      break;
    }
  }
  if (!head) {
    pthread_mutex_unlock(&sh->mu);
    if (blob == inline_blob(e))
      cray__store_free_inline(blob);
    else
      cray__slab_free(&entry_slab, e);
    return NULL;
  }
  e->next = *head;
  *head = e;
  if (p)
    p->live++;
  else
    sh->hashed++;
  sh->count++;
  sh->puts++;
  if (blob) cray__store_add_bytes(s, sh, (int64_t)blob->len);
  if (sh->hashed > sh->nbuckets) grow(sh);
  pthread_mutex_unlock(&sh->mu);
  return e;
}

cray__entry *cray__store_insert(cray__store *s, cray_id id, cray__blob *blob) {
  cray__entry *e = cray__slab_alloc(&entry_slab);
  return e ? link_new(s, id, e, blob) : NULL;
}

#define INLINE_SIZE (INLINE_AT + offsetof(cray__blob, aux) + CRAY__INLINE_MAX)
_Static_assert(INLINE_SIZE == 96, "an entry with its value is a 96-byte block");
_Static_assert(INLINE_AT % _Alignof(cray__blob) == 0, "the blob's header follows `next`");
_Static_assert((INLINE_AT + offsetof(cray__blob, aux)) % 8 == 0, "the bytes 8-aligned");

static cray__slab inline_slab = CRAY__SLAB_INIT(INLINE_SIZE, 0);

cray__entry *cray__store_insert_inline(cray__store *s, cray_id id, const uint8_t *data,
                                       size_t len, uint32_t count, uint32_t flags) {
  if (len > CRAY__INLINE_MAX) return NULL;
  cray__entry *e = cray__slab_alloc(&inline_slab);
  if (!e) return NULL;
  cray__blob *b = inline_blob(e);
  cray__blob_init_inline(b, data, len, count, flags);
  return link_new(s, id, e, b);
}

void cray__store_free_inline(cray__blob *b) {
  cray__slab_free(&inline_slab, (char *)b - INLINE_AT);
}

cray__entry *cray__store_lookup(cray__store *s, const cray_id *id) {
  shard *sh = cray__shard_of(s, id);
  pthread_mutex_lock(&sh->mu);
  if (!cray__id_direct(s, id)) rehash_step(sh);
  cray__entry **head = chain_of(s, sh, id);
  cray__entry *e = head ? *head : NULL;
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

/* Takes e out of its chain and its bytes out of the counts, under its shard's lock; e's
 * count has reached zero. A copy on disk is queued for deletion. */
static void unlink_locked(cray__store *s, shard *sh, cray__entry *e) {
  if (!cray__id_direct(s, &e->id)) rehash_step(sh);
  cray__entry **pp = chain_of(s, sh, &e->id); /* e is in it: its page is there */
  while (*pp != e) pp = &(*pp)->next;
  *pp = e->next;
  if (cray__id_direct(s, &e->id)) {
    cray__page *p = page_of(sh, &e->id);
    if (!--p->live) {
      sh->top[cray__id_page(&e->id) / NSHARDS] = NULL;
      if (sh->spare)
        cray__free(p);
      else
        sh->spare = p; /* every slot is NULL again */
    }
  } else {
    sh->hashed--;
  }
  sh->count--;
  sh->frees++;
  cray__blob *b = stored(e);
  if (b && !(b->flags & CRAY__BLOB_SPILLED)) cray__store_add_bytes(s, sh, -(int64_t)b->len);
  if (e->on_disk) {
    sh->disk_objects--;
    sh->disk_bytes -= b->len;
    cray__store_forget(s, &e->id, b->len);
  }
}

/* Frees the unlinked entries queued on freeing.dead and those their blobs' release queues,
 * unless this thread is freeing already (further up its stack, which goes on with them). */
static void free_dead(cray__store *s) {
  if (freeing.busy) return;
  freeing.busy = 1;
  cray__entry *e;
  while ((e = freeing.dead)) {
    freeing.dead = e->next;
    cray__blob *b = stored(e);
    if (b && (b->flags & CRAY__BLOB_INLINE)) { /* a put's: no actor, not remote */
      cray__blob_release(s, b);                 /* frees e with the blob's last reference */
      continue;
    }
    if (b) cray__blob_release(s, b);
    if (e->actor == CRAY__ENTRY_ACTOR && s->actor_gone) s->actor_gone(s->actor_ctx, e->producer);
    if (e->remote && s->remote_gone) s->remote_gone(s->remote_ctx, &e->id);
    cray__slab_free(&entry_slab, e);
  }
  freeing.busy = 0;
}

void cray__store_release_n(cray__store *s, cray__entry *e, uint32_t n) {
  if (atomic_fetch_sub_explicit(&e->refs, n, memory_order_acq_rel) != n) return;
  shard *sh = cray__shard_of(s, &e->id);
  pthread_mutex_lock(&sh->mu);
  unlink_locked(s, sh, e);
  pthread_mutex_unlock(&sh->mu);
  e->next = freeing.dead;
  freeing.dead = e;
  free_dead(s);
}

void cray__store_release(cray__store *s, cray__entry *e) { cray__store_release_n(s, e, 1); }

/* How far ahead of its count an entry is prefetched: enough misses in flight to cover a
 * miss's latency, fewer than the core's line fill buffers. */
#define AHEAD 8

/* Both lines of an entry: the count and the chain link, then the rest with the blob's
 * header when the value is inside it. */
static inline void prefetch_entry(const cray__entry *e) {
  cray__prefetch_write(e);
  cray__prefetch_write((const char *)e + 64);
}

void cray__store_release_all(cray__store *s, cray__entry **v, size_t n) {
  size_t k = 0;
  for (size_t i = 0; i < n && i < AHEAD; i++) prefetch_entry(v[i]);
  for (size_t i = 0; i < n; i++) {
    if (i + AHEAD < n) prefetch_entry(v[i + AHEAD]);
    if (atomic_fetch_sub_explicit(&v[i]->refs, 1, memory_order_acq_rel) == 1) v[k++] = v[i];
  }
  for (size_t i = 0; i < k;) {
    shard *sh = cray__shard_of(s, &v[i]->id);
    pthread_mutex_lock(&sh->mu);
    do unlink_locked(s, sh, v[i]);
    while (++i < k && cray__shard_of(s, &v[i]->id) == sh);
    pthread_mutex_unlock(&sh->mu);
  }
  while (k) {
    cray__entry *e = v[--k];
    e->next = freeing.dead;
    freeing.dead = e;
  }
  free_dead(s);
}

int cray__store_resolve(cray__store *s, cray__entry *e, cray__blob *blob, int failed) {
  shard *sh = cray__shard_of(s, &e->id);
  pthread_mutex_lock(&sh->mu);
  if (atomic_load_explicit(&e->state, memory_order_relaxed) != CRAY__PENDING) {
    pthread_mutex_unlock(&sh->mu);
    return CRAY_EINVAL;
  }
  atomic_store_explicit(&e->stored, blob, memory_order_relaxed);
  atomic_store_explicit(&e->hot, 1, memory_order_relaxed);
  e->producer = NULL;
  cray__store_add_bytes(s, sh, (int64_t)blob->len);
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

void cray__store_set_producer(cray__store *s, cray__entry *e, void *producer) {
  shard *sh = cray__shard_of(s, &e->id);
  pthread_mutex_lock(&sh->mu);
  e->producer = producer;
  pthread_mutex_unlock(&sh->mu);
}

int cray__store_with_producer(cray__store *s, cray__entry *e, void (*fn)(void *producer, void *arg),
                              void *arg) {
  shard *sh = cray__shard_of(s, &e->id);
  pthread_mutex_lock(&sh->mu);
  void *p = atomic_load_explicit(&e->state, memory_order_relaxed) == CRAY__PENDING && !e->actor
                ? e->producer
                : NULL;
  if (p) fn(p, arg);
  pthread_mutex_unlock(&sh->mu);
  return p != NULL;
}

int cray__store_try_producer(cray__store *s, cray__entry *e, void **out) {
  shard *sh = cray__shard_of(s, &e->id);
  if (pthread_mutex_trylock(&sh->mu) != 0) return 0;
  *out = atomic_load_explicit(&e->state, memory_order_relaxed) == CRAY__PENDING ? e->producer
                                                                                : NULL;
  pthread_mutex_unlock(&sh->mu);
  return 1;
}

void cray__store_want(cray__store *s, cray__entry *e) {
  /* relaxed: the flag is its own only datum; the exchange makes one caller the asker */
  if (atomic_load_explicit(&e->unpulled, memory_order_relaxed) &&
      atomic_exchange_explicit(&e->unpulled, 0, memory_order_relaxed) && s->remote_wanted)
    s->remote_wanted(s->wanted_ctx, &e->id);
}

int cray__store_subscribe(cray__store *s, cray__entry *e, cray__waitnode *node) {
  cray__store_want(s, e);
  shard *sh = cray__shard_of(s, &e->id);
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
  shard *sh = cray__shard_of(s, &e->id);
  pthread_mutex_lock(&sh->mu);
  /* A resolved entry has no waiters left (and one born ready has no `waiters` at all) */
  int pending = atomic_load_explicit(&e->state, memory_order_relaxed) == CRAY__PENDING;
  for (cray__waitnode **pp = &e->waiters; pending && *pp; pp = &(*pp)->next) {
    if (*pp == node) {
      *pp = node->next;
      break;
    }
  }
  pthread_mutex_unlock(&sh->mu);
}

void cray__store_on_remote_wanted(cray__store *s, void (*wanted)(void *ctx, const cray_id *id),
                                  void *ctx) {
  s->remote_wanted = wanted;
  s->wanted_ctx = ctx;
}

void cray__store_on_remote_gone(cray__store *s, void (*gone)(void *ctx, const cray_id *id),
                                void *ctx) {
  s->remote_gone = gone;
  s->remote_ctx = ctx;
}

void cray__store_on_actor_gone(cray__store *s, void (*gone)(void *ctx, void *actor), void *ctx) {
  s->actor_gone = gone;
  s->actor_ctx = ctx;
}

/* ---- pins and restores ---- */

/* The fast path met the spill thread at work, or a husk. Under the shard lock EVICTING
 * is never set (it is set and cleared under it), so a pin taken here is safe; a husk is
 * read back by one reader while the others wait for it. */
int cray__store_pin_slow(cray__store *s, cray__entry *e, cray__blob **out) {
  atomic_fetch_sub_explicit(&e->pins, 1, memory_order_release);
  shard *sh = cray__shard_of(s, &e->id);
  pthread_mutex_lock(&sh->mu);
  for (;;) {
    cray__blob *b = stored(e);
    if (!(b->flags & CRAY__BLOB_SPILLED)) {
      atomic_fetch_add_explicit(&e->pins, 1, memory_order_acquire);
      atomic_store_explicit(&e->hot, 1, memory_order_relaxed);
      pthread_mutex_unlock(&sh->mu);
      *out = b;
      return 0;
    }
    if (!e->restoring) break;
    pthread_cond_wait(&sh->restored, &sh->mu);
  }
  e->restoring = 1;
  cray__blob *husk = stored(e); /* ours alone until restoring is cleared */
  pthread_mutex_unlock(&sh->mu);

  cray__store_reserve(s, husk->len, 0);
  int err = 0;
  cray__blob *b = cray__blob_unhusk(s, husk);
  if (b && (err = cray__spill_read(s->spill, &e->id, b->data, b->len)) != 0) {
    cray__blob_free_shell(s, b);
    b = NULL;
  }

  pthread_mutex_lock(&sh->mu);
  e->restoring = 0;
  pthread_cond_broadcast(&sh->restored);
  if (b) {
    atomic_store_explicit(&e->stored, b, memory_order_relaxed);
    /* release: a fast-path pin that sees it clear reads the new blob, never the husk */
    atomic_store_explicit(&e->spilled, 0, memory_order_release);
    atomic_fetch_add_explicit(&e->pins, 1, memory_order_acquire);
    atomic_store_explicit(&e->hot, 1, memory_order_relaxed);
    cray__store_add_bytes(s, sh, (int64_t)b->len);
    sh->restores++;
  }
  pthread_mutex_unlock(&sh->mu);
  if (!b) return err == 0 ? CRAY_ENOMEM : err == CRAY_EBADBLOB ? CRAY_EBADBLOB : CRAY_ESYS;
  cray__blob_free_shell(s, husk);
  *out = b;
  return 0;
}

cray__blob *cray__store_evict_locked(cray__store *s, shard *sh, cray__entry *e, uint32_t rc) {
  uint32_t idle = 0;
  if (!atomic_compare_exchange_strong_explicit(&e->pins, &idle, CRAY__EVICTING,
                                               memory_order_acquire, memory_order_relaxed))
    return NULL;
  cray__blob *b = stored(e), *husk = NULL;
  if (atomic_load_explicit(&b->rc, memory_order_acquire) == rc && (husk = cray__blob_husk(b))) {
    atomic_store_explicit(&e->stored, husk, memory_order_relaxed);
    /* relaxed: pins are taken after EVICTING is cleared below, with release */
    atomic_store_explicit(&e->spilled, 1, memory_order_relaxed);
  }
  atomic_fetch_sub_explicit(&e->pins, CRAY__EVICTING, memory_order_release);
  if (!husk) return NULL;
  cray__store_add_bytes(s, sh, -(int64_t)b->len);
  return b;
}

/* ---- the rest ---- */

/* The calling thread's slot in s (store_internal.h). */
static credit *my_credit(cray__store *s) {
  if (mine.generation != s->generation) {
    unsigned i = atomic_fetch_add_explicit(&s->ncredits, 1, memory_order_relaxed) + 1;
    mine.generation = s->generation;
    mine.slot = &s->credits[i < NCREDITS ? i : 0];
  }
  return mine.slot;
}

void cray__store_count_bytes(cray__store *s, int64_t delta) {
  credit *c = my_credit(s);
  if (c == s->credits) pthread_mutex_lock(&s->credit_mu);
  /* relaxed: the slot has one writer; stats sums the slots, ordered by no one */
  atomic_store_explicit(&c->bytes, atomic_load_explicit(&c->bytes, memory_order_relaxed) + delta,
                        memory_order_relaxed);
  c->credit -= delta;
  if (c->credit < 0 || c->credit >= 2 * GRANULE) {
    int64_t left = GRANULE + (c->credit & (GRANULE - 1)); /* one to two granules */
    settle(s, left - c->credit);
    c->credit = left;
  }
  if (c == s->credits) pthread_mutex_unlock(&s->credit_mu);
}

cray__bigmem *cray__store_bigmem(cray__store *s) { return s ? &s->big : NULL; }

const char *cray__store_spill_dir(cray__store *s) {
  return s->spill ? cray__spill_dir(s->spill) : NULL;
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
    out->spilled_objects += sh->disk_objects;
    out->spilled_bytes += sh->disk_bytes;
    out->restored_objects += sh->restores;
    pthread_mutex_unlock(&sh->mu);
  }
  unsigned n = atomic_load_explicit(&s->ncredits, memory_order_relaxed) + 1;
  for (unsigned i = 0; i < n && i < NCREDITS; i++) /* relaxed: shown only */
    out->bytes += (uint64_t)atomic_load_explicit(&s->credits[i].bytes, memory_order_relaxed);
  /* relaxed: shown only */
  out->peak_bytes = atomic_load_explicit(&s->peak, memory_order_relaxed);
  if (out->peak_bytes < out->bytes) out->peak_bytes = out->bytes;
}
