/*
 * bigmem.c: see bigmem.h. A block's size is its byte count rounded up to pages, so the
 * size is never stored: it is recomputed from the n the caller allocated with.
 */
#include "bigmem.h"

#include <sys/mman.h>
#include <unistd.h>

/* The page size, read once for all threads (pthread_once orders the write before every
 * read, so no thread sees it half-set). */
static size_t page;
static pthread_once_t page_once = PTHREAD_ONCE_INIT;

static void page_read(void) {
  page = (size_t)sysconf(_SC_PAGESIZE);
}

static size_t page_round(size_t n) {
  pthread_once(&page_once, page_read);
  return (n + page - 1) / page * page;
}

static void *map_fresh(size_t size) {
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
#ifdef MADV_HUGEPAGE
  madvise(p, size, MADV_HUGEPAGE);
#endif
  return p;
}

void cray__bigmem_init(cray__bigmem *m, size_t cap) {
  pthread_mutex_init(&m->mu, NULL);
  m->cap = cap;
  m->cached = 0;
  m->n = 0;
}

void cray__bigmem_destroy(cray__bigmem *m) {
  cray__bigmem_trim(m);
  pthread_mutex_destroy(&m->mu);
}

/* Takes the cached block that fits best: the smallest that is big enough, else the
 * largest (grown below). Under m->mu. */
static int take(cray__bigmem *m, size_t size, void **p, size_t *have) {
  int best = -1;
  for (int i = 0; i < m->n; i++) {
    size_t s = m->slot[i].size;
    if (best < 0) best = i;
    else if (s >= size ? (m->slot[best].size < size || s < m->slot[best].size)
                       : (m->slot[best].size < size && s > m->slot[best].size))
      best = i;
  }
  if (best < 0) return 0;
  *p = m->slot[best].p;
  *have = m->slot[best].size;
  m->cached -= *have;
  m->slot[best] = m->slot[--m->n];
  return 1;
}

void *cray__bigmem_alloc(cray__bigmem *m, size_t n) {
  size_t size = page_round(n), have;
  void *p;
  if (!m) return map_fresh(size);
  pthread_mutex_lock(&m->mu);
  int got = take(m, size, &p, &have);
  pthread_mutex_unlock(&m->mu);
  if (!got) return map_fresh(size);
  if (have == size) return p;
  void *q = mremap(p, have, size, have > size ? 0 : MREMAP_MAYMOVE);
  if (q != MAP_FAILED) return q;
  munmap(p, have);
  return map_fresh(size);
}

void cray__bigmem_free(cray__bigmem *m, void *p, size_t n) {
  size_t size = page_round(n);
  if (!m || size > m->cap) {
    munmap(p, size);
    return;
  }
  void *drop[CRAY__BIG_SLOTS];
  size_t drop_size[CRAY__BIG_SLOTS];
  int ndrop = 0;
  pthread_mutex_lock(&m->mu);
  /* Room is made by dropping the oldest blocks, at the front of the list. */
  while (m->n && (m->n == CRAY__BIG_SLOTS || m->cached + size > m->cap)) {
    drop[ndrop] = m->slot[0].p;
    drop_size[ndrop++] = m->slot[0].size;
    m->cached -= m->slot[0].size;
    for (int i = 1; i < m->n; i++) m->slot[i - 1] = m->slot[i];
    m->n--;
  }
  m->slot[m->n].p = p;
  m->slot[m->n].size = size;
  m->n++;
  m->cached += size;
  pthread_mutex_unlock(&m->mu);
  while (ndrop--) munmap(drop[ndrop], drop_size[ndrop]);
}

void cray__bigmem_trim(cray__bigmem *m) {
  if (!m) return;
  pthread_mutex_lock(&m->mu);
  int n = m->n;
  struct {
    void *p;
    size_t size;
  } v[CRAY__BIG_SLOTS];
  for (int i = 0; i < n; i++) v[i].p = m->slot[i].p, v[i].size = m->slot[i].size;
  m->n = 0;
  m->cached = 0;
  pthread_mutex_unlock(&m->mu);
  for (int i = 0; i < n; i++) munmap(v[i].p, v[i].size);
}
