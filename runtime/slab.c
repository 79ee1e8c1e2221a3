/*
 * slab.c: see slab.h.
 *
 * Each thread keeps freed blocks in a cache of its own, one per slab; past two batches it
 * hands one batch to the slab's pool (one lock a batch), from which a thread whose cache
 * is empty takes one. The pool keeps a bounded number of batches; a batch past those goes
 * back, block by block, to the chunks the blocks came from, still under that one lock.
 * A chunk counts the blocks it has not handed out (its free list and the blocks never
 * carved yet); when that is all of them the chunk goes, but for one kept as the spare.
 * A thread whose cache is empty and finds the pool empty carves a batch from the chunks
 * with blocks left (`partial`), the spare, or a new chunk.
 */
#include "slab.h"

#include <stdint.h>
#include <sys/mman.h>

#include "alloc.h"

#ifdef CRAY__ASAN
/* AddressSanitizer sees each block come and go. */
void *cray__slab_alloc(cray__slab *s) { return cray__malloc(s->size); }
void cray__slab_free(cray__slab *s, void *p) {
  (void)s;
  cray__free(p);
}
void cray__slab_thread_done(void) {}
size_t cray__slab_mapped(cray__slab *s) {
  (void)s;
  return 0;
}
#else

#define BATCH 64    /* blocks a thread hands to the pool at once */
#define POOL_MAX 64 /* batches the pool keeps: 4,096 blocks */

typedef struct block {
  struct block *next;       /* in a cache, a batch or a chunk's free list */
  struct block *next_batch; /* first blocks of the pool's batches */
} block;

typedef struct cray__slab_chunk {
  _Alignas(CRAY__LINE) struct cray__slab_chunk *prev, *next; /* in `partial` */
  block *free;   /* blocks given back to it */
  size_t nfree;  /* blocks not handed out: on `free`, or past `carved` */
  size_t carved; /* blocks handed out from its untouched end so far */
  size_t nblocks;
} chunk;

#define HEAD ((sizeof(chunk) + CRAY__LINE - 1) / CRAY__LINE * CRAY__LINE)

static _Thread_local struct {
  block *head;
  int n;
  cray__slab *slab; /* the slab whose blocks these are, once it has any */
} caches[CRAY__SLABS];

static chunk *chunk_of(const void *p) {
  return (chunk *)((uintptr_t)p & ~(uintptr_t)(CRAY__SLAB_CHUNK - 1));
}

static void unlist(cray__slab *s, chunk *c) {
  if (c->prev) c->prev->next = c->next;
  else s->partial = c->next;
  if (c->next) c->next->prev = c->prev;
}

static void list(cray__slab *s, chunk *c) {
  c->prev = NULL;
  c->next = s->partial;
  if (c->next) c->next->prev = c;
  s->partial = c;
}

/* A new chunk, aligned to its size, NULL when memory is short; under s->mu. */
static chunk *map_chunk(cray__slab *s) {
  size_t span = 2 * CRAY__SLAB_CHUNK;
  char *m = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return NULL;
  char *at = (char *)(((uintptr_t)m + CRAY__SLAB_CHUNK - 1) & ~(uintptr_t)(CRAY__SLAB_CHUNK - 1));
  if (at > m) munmap(m, (size_t)(at - m));
  if (at + CRAY__SLAB_CHUNK < m + span)
    munmap(at + CRAY__SLAB_CHUNK, (size_t)(m + span - at - CRAY__SLAB_CHUNK));
  /* A hint, from the second chunk on: a huge page is resident whole from its first touch,
   * which would cost a small process up to a chunk a slab for a few blocks. */
  if (s->mapped) madvise(at, CRAY__SLAB_CHUNK, MADV_HUGEPAGE);
  chunk *c = (chunk *)at;
  c->free = NULL;
  c->nblocks = c->nfree = (CRAY__SLAB_CHUNK - HEAD) / s->size;
  c->carved = 0;
  s->mapped += CRAY__SLAB_CHUNK;
  return c;
}

/* Takes up to BATCH blocks from the chunks, chained; *n says how many. Under s->mu.
 * Blocks never handed out are chained in the order of their addresses, so that objects
 * made one after the other sit one after the other, as the hardware prefetcher expects of
 * a walk over them in that order. */
static block *carve(cray__slab *s, int *n) {
  block *first = NULL, **tail = &first;
  *n = 0;
  while (*n < BATCH) {
    chunk *c = s->partial;
    if (!c) {
      c = s->spare ? s->spare : map_chunk(s);
      if (!c) break;
      s->spare = NULL;
      list(s, c);
    }
    while (*n < BATCH && c->nfree) {
      block *b = c->free;
      if (b)
        c->free = b->next;
      else
        b = (block *)((char *)c + HEAD + c->carved++ * s->size);
      c->nfree--;
      *tail = b;
      tail = &b->next;
      ++*n;
    }
    if (!c->nfree) unlist(s, c);
  }
  *tail = NULL;
  return first;
}

/* Gives the chain `first` back to the chunks its blocks came from; under s->mu. */
static void uncarve(cray__slab *s, block *first) {
  while (first) {
    block *b = first;
    first = b->next;
    chunk *c = chunk_of(b);
    b->next = c->free;
    c->free = b;
    if (c->nfree++ == 0) list(s, c);
    if (c->nfree < c->nblocks) continue;
    unlist(s, c);
    if (!s->spare) {
      c->free = NULL; /* as new: carved from its start again */
      c->carved = 0;
      s->spare = c;
    } else {
      munmap(c, CRAY__SLAB_CHUNK);
      s->mapped -= CRAY__SLAB_CHUNK;
    }
  }
}

void *cray__slab_alloc(cray__slab *s) {
  __typeof__(caches[0]) *cache = &caches[s->index];
  if (!cache->head) {
    pthread_mutex_lock(&s->mu);
    block *b = s->pool;
    int n = BATCH;
    if (b)
      s->pool = b->next_batch, s->npool--;
    else
      b = carve(s, &n);
    pthread_mutex_unlock(&s->mu);
    if (!b) return NULL;
    cache->head = b;
    cache->n = n;
    cache->slab = s;
  }
  block *b = cache->head;
  cache->head = b->next;
  cache->n--;
  /* The next block may have been freed on another core: its lines are fetched for writing
   * now, behind this block's use. */
  for (size_t i = 0; cache->head && i < s->size; i += CRAY__LINE)
    cray__prefetch_write((char *)cache->head + i);
  return b;
}

/* Hands `first` (a chain of n blocks) to the pool, or to its chunks when the pool is full
 * or the chain is not a whole batch. */
static void give(cray__slab *s, block *first, int n) {
  pthread_mutex_lock(&s->mu);
  if (n == BATCH && s->npool < POOL_MAX) {
    first->next_batch = s->pool;
    s->pool = first;
    s->npool++;
  } else {
    uncarve(s, first);
  }
  pthread_mutex_unlock(&s->mu);
}

void cray__slab_free(cray__slab *s, void *p) {
  __typeof__(caches[0]) *cache = &caches[s->index];
  block *b = p;
  b->next = cache->head;
  cache->head = b;
  cache->slab = s;
  if (++cache->n < 2 * BATCH) return;
  block *first = cache->head, *last = first;
  for (int i = 1; i < BATCH; i++) last = last->next;
  cache->head = last->next;
  cache->n -= BATCH;
  last->next = NULL;
  give(s, first, BATCH);
}

void cray__slab_thread_done(void) {
  for (int i = 0; i < CRAY__SLABS; i++) {
    if (caches[i].head) give(caches[i].slab, caches[i].head, caches[i].n);
    caches[i].head = NULL;
    caches[i].n = 0;
  }
}

size_t cray__slab_mapped(cray__slab *s) {
  pthread_mutex_lock(&s->mu);
  size_t n = s->mapped;
  pthread_mutex_unlock(&s->mu);
  return n;
}
#endif
