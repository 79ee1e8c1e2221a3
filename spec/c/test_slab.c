/*
 * test_slab.c: the slab's blocks (runtime/slab.h): apart from each other, recycled, freed
 * from any thread, and their memory given back once they are all free.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../runtime/slab.h"
#include "check.h"

enum { SIZE = 104, N = 200000 }; /* about ten chunks' worth */

static cray__slab slab = CRAY__SLAB_INIT(SIZE, 2); /* the store's are 0 and 1 */

static void **alloc_all(void) {
  void **v = malloc(N * sizeof *v);
  for (int i = 0; i < N; i++) {
    v[i] = cray__slab_alloc(&slab);
    if (v[i]) memset(v[i], i & 0xff, SIZE);
  }
  return v;
}

static void free_all(void **v) {
  for (int i = 0; i < N; i++) cray__slab_free(&slab, v[i]);
  free(v);
}

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
  return x < y ? -1 : x > y;
}

/* Each block is its own: aligned, and none overlaps another while they are live. */
static void test_blocks_apart(void) {
  void **v = alloc_all();
  int aligned = 1, intact = 1, apart = 1;
  for (int i = 0; i < N; i++) {
    aligned &= v[i] && (uintptr_t)v[i] % 8 == 0;
    intact &= v[i] && ((unsigned char *)v[i])[0] == (i & 0xff) &&
              ((unsigned char *)v[i])[SIZE - 1] == (i & 0xff);
  }
  CHECK(aligned);
  CHECK(intact);
  void **sorted = malloc(N * sizeof *sorted);
  memcpy(sorted, v, N * sizeof *v);
  qsort(sorted, N, sizeof *sorted, cmp_ptr);
  for (int i = 1; i < N; i++) apart &= (uintptr_t)sorted[i] - (uintptr_t)sorted[i - 1] >= SIZE;
  CHECK(apart);
  free(sorted);
#ifndef CRAY__ASAN
  CHECK(cray__slab_mapped(&slab) >= (size_t)N * SIZE);
#endif
  free_all(v);
  cray__slab_thread_done();
}

/* Once every block is free, at most two chunks stay mapped: the spare and the one the
 * pool's blocks are in (freed in the order they were made, as a drop of refs does). Blocks
 * made again are recycled. */
static void test_memory_goes_back(void) {
  CHECK(cray__slab_mapped(&slab) <= 2 * CRAY__SLAB_CHUNK);
  free_all(alloc_all());
  cray__slab_thread_done();
  CHECK(cray__slab_mapped(&slab) <= 2 * CRAY__SLAB_CHUNK);
}

static void *free_there(void *v) {
  free_all(v);
  cray__slab_thread_done();
  return NULL;
}

/* Blocks made on one thread and freed on another go back all the same. */
static void test_freed_on_another_thread(void) {
  void **v = alloc_all();
  pthread_t t;
  pthread_create(&t, NULL, free_there, v);
  pthread_join(t, NULL);
  cray__slab_thread_done();
  CHECK(cray__slab_mapped(&slab) <= 2 * CRAY__SLAB_CHUNK);
  v = alloc_all();
  int made = 1;
  for (int i = 0; i < N; i++) made &= v[i] != NULL;
  CHECK(made);
  free_all(v);
  cray__slab_thread_done();
  CHECK(cray__slab_mapped(&slab) <= 2 * CRAY__SLAB_CHUNK);
}

int main(void) {
  RUN(test_blocks_apart);
  RUN(test_memory_goes_back);
  RUN(test_freed_on_another_thread);
  return check_done();
}
