/*
 * alloc.c: see alloc.h. Thin on purpose: the C library's allocator keeps per-thread size
 * classes, which is what the store's hot paths need; a replacement goes here.
 *
 * Small blocks are recycled for what one thread makes and another frees (a task sent to
 * an actor on another worker), a pattern the C library serves slowly. Each thread keeps
 * freed blocks in a cache of its own; past two batches it hands one batch to a shared
 * pool (one lock a batch), from which a thread whose cache is empty takes one. The pool
 * keeps a bounded number of batches; the rest goes back to the C library.
 */
#include "alloc.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cray.h"
#include "slab.h"

int cray__prefetchw;

#if defined(__x86_64__) && !defined(__PRFCHW__)
#include <cpuid.h>

/* CPUID 0x80000001, ECX bit 8: PREFETCHW (AMD's 3DNowPrefetch, Intel's PRFCHW). */
__attribute__((constructor)) static void detect_prefetchw(void) {
  unsigned a, b, c, d;
  cray__prefetchw = __get_cpuid(0x80000001, &a, &b, &c, &d) && (c & bit_PRFCHW);
}
#endif

void *cray__malloc(size_t n) { return malloc(n ? n : 1); }

void *cray__calloc(size_t count, size_t n) { return calloc(count ? count : 1, n ? n : 1); }

void *cray__realloc(void *p, size_t n) { return realloc(p, n ? n : 1); }

void cray__free(void *p) { free(p); }

void *cray__calloc_lines(size_t count, size_t n) {
  if (!count) count = 1;
  if (!n) n = 1;
  if (n > (SIZE_MAX - CRAY__LINE) / count) return NULL;
  size_t size = (count * n + CRAY__LINE - 1) / CRAY__LINE * CRAY__LINE;
  void *p = aligned_alloc(CRAY__LINE, size);
  if (p) memset(p, 0, size);
  return p;
}

char *cray__strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = cray__malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

int cray__thread_start(pthread_t *thread, void *(*fn)(void *), void *arg) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old); /* the new thread inherits the mask */
  int rc = pthread_create(thread, NULL, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc ? CRAY_ESYS : 0;
}

#ifdef CRAY__ASAN
/* AddressSanitizer sees each block come and go. */
void *cray__small_alloc(void) { return cray__malloc(CRAY__SMALL); }
void cray__small_free(void *p) { cray__free(p); }
void cray__thread_done(void) { cray__slab_thread_done(); }
#else

#define BATCH 64      /* blocks a thread hands to the pool at once */
#define POOL_MAX 512  /* batches the pool keeps: 16 MiB */

typedef struct block {
  struct block *next;       /* in a cache, or in a batch */
  struct block *next_batch; /* first blocks of the pool's batches */
} block;

static _Thread_local struct {
  block *head;
  int n;
} cache;

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static block *pool;
static int npool;

void *cray__small_alloc(void) {
  if (!cache.head) {
    pthread_mutex_lock(&pool_mu);
    block *b = pool;
    if (b) pool = b->next_batch, npool--;
    pthread_mutex_unlock(&pool_mu);
    if (!b) return cray__malloc(CRAY__SMALL);
    cache.head = b;
    cache.n = BATCH;
  }
  block *b = cache.head;
  cache.head = b->next;
  cache.n--;
  /* The next block was likely freed on another core: its lines are fetched for writing now,
   * behind this block's use, not when the caller's stores wait for them. */
  for (int i = 0; cache.head && i < CRAY__SMALL; i += CRAY__LINE)
    cray__prefetch_write((char *)cache.head + i);
  return b;
}

/* Hands `first` (a chain of `n` blocks) to the pool, or to the C library when it is full. */
static void give(block *first, int n) {
  pthread_mutex_lock(&pool_mu);
  int keep = n == BATCH && npool < POOL_MAX;
  if (keep) first->next_batch = pool, pool = first, npool++;
  pthread_mutex_unlock(&pool_mu);
  while (!keep && first) {
    block *next = first->next;
    cray__free(first);
    first = next;
  }
}

void cray__small_free(void *p) {
  block *b = p;
  b->next = cache.head;
  cache.head = b;
  if (++cache.n < 2 * BATCH) return;
  block *first = cache.head, *last = first;
  for (int i = 1; i < BATCH; i++) last = last->next;
  cache.head = last->next;
  cache.n -= BATCH;
  last->next = NULL;
  give(first, BATCH);
}

void cray__thread_done(void) {
  cray__slab_thread_done();
  give(cache.head, cache.n);
  cache.head = NULL;
  cache.n = 0;
}
#endif
