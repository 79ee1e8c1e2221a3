/*
 * slab.h: blocks of one fixed size, carved from large chunks of their own, for objects
 * made by the million (the store's entries, store.c).
 *
 * A block has no header: the chunk it sits in is found from its address. Chunks are
 * CRAY__SLAB_CHUNK bytes, aligned to their size and, but for a slab's only chunk, asked
 * to be backed by huge pages, so a million live blocks sit on a few hundred TLB entries. Freed blocks are recycled
 * through a cache per thread and a shared pool, as cray__small_alloc's are (any thread
 * may free a block another made); past those, a block goes back to its chunk, and a chunk
 * whose blocks are all back is unmapped, but for one kept for the next need. So what a
 * slab keeps mapped when all its blocks are free is bounded: one chunk, the pool's
 * batches and the threads' caches (and the chunks those blocks are in).
 *
 * Under AddressSanitizer each block is a malloc of its own, so that the sanitizer sees
 * each one come and go; nothing is mapped then.
 */
#ifndef CRAY_SLAB_H
#define CRAY_SLAB_H

#include <pthread.h>
#include <stddef.h>

/* Set when AddressSanitizer instruments the build: gcc says so with a macro, clang (before
 * version 15) only through __has_feature. Small blocks (alloc.h) are plain mallocs then too. */
#if defined(__SANITIZE_ADDRESS__)
#define CRAY__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CRAY__ASAN 1
#endif
#endif

#define CRAY__SLAB_CHUNK ((size_t)2 << 20) /* one huge page on x86-64 */
#define CRAY__SLABS 3                        /* slabs a process may have (their caches) */

struct cray__slab_chunk;

typedef struct cray__slab {
  size_t size; /* a block's bytes: a multiple of 8, at least 16 */
  int index;   /* its cache in each thread, below CRAY__SLABS; one slab each */
  pthread_mutex_t mu;
  void *pool; /* batches of freed blocks, for threads whose cache is empty */
  int npool;
  struct cray__slab_chunk *partial; /* chunks with blocks not handed out */
  struct cray__slab_chunk *spare;   /* a chunk with all its blocks back, kept */
  size_t mapped;                    /* bytes of chunks mapped */
} cray__slab;

/* A slab of blocks of `size` bytes, using cache `index` of each thread; static. */
#define CRAY__SLAB_INIT(size_, index_) \
  { .size = (size_), .index = (index_), .mu = PTHREAD_MUTEX_INITIALIZER }

/* A block, 8-byte aligned and not zeroed, or NULL when memory is short. */
void *cray__slab_alloc(cray__slab *s);
/* Gives back p, from cray__slab_alloc(s); any thread may. */
void cray__slab_free(cray__slab *s, void *p);
/* Before a thread ends (cray__thread_done): gives its caches back. */
void cray__slab_thread_done(void);
/* Bytes of chunks the slab has mapped now. */
size_t cray__slab_mapped(cray__slab *s);

#endif
