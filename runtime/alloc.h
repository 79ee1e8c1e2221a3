/*
 * alloc.h: the one allocation path of the runtime, and how its threads start and end.
 *
 * Every byte the runtime allocates goes through these functions, so it can be counted and
 * replaced in one place. Small blocks come from the C library's per-thread caches, but for
 * the store's entries with their value inside, which have a slab of their own (slab.h).
 */
#ifndef CRAY_ALLOC_H
#define CRAY_ALLOC_H

#include <pthread.h>
#include <stddef.h>

void *cray__malloc(size_t n);
void *cray__calloc(size_t count, size_t n);
void *cray__realloc(void *p, size_t n);
void cray__free(void *p);
char *cray__strdup(const char *s);

/* count zeroed elements of n bytes starting on a cache line (64 bytes), for arrays of
 * types that claim lines of their own (_Alignas(CRAY__LINE)); freed with cray__free. */
#define CRAY__LINE 64
void *cray__calloc_lines(size_t count, size_t n);

/* Asks for the line holding p to be fetched for writing, ahead of a store to it: the line
 * comes exclusive, so the store does not wait for another core to give it up. On x86-64
 * that is PREFETCHW where the CPU has it (cray__prefetchw, read from CPUID at load): the
 * compiler's write prefetch is a read prefetch unless the build targets such a CPU. */
extern int cray__prefetchw;
static inline void cray__prefetch_write(const void *p) {
#if defined(__x86_64__) && !defined(__PRFCHW__)
  if (cray__prefetchw) {
    __asm__ volatile("prefetchw %0" : : "m"(*(const char *)p));
    return;
  }
#endif
  __builtin_prefetch(p, 1, 3);
}

/* Blocks of CRAY__SMALL bytes, recycled between threads (alloc.c); not zeroed. */
#define CRAY__SMALL 512
void *cray__small_alloc(void);
void cray__small_free(void *p);
/* Starts a thread of the runtime with every signal blocked, so that signals meant for the
 * program (SIGINT, SIGTERM) reach its own threads. 0 or CRAY_ESYS. */
int cray__thread_start(pthread_t *thread, void *(*fn)(void *), void *arg);
/* Before a thread of the runtime ends: gives its caches of small blocks and of slab
 * blocks (slab.h) back. */
void cray__thread_done(void);

#endif
