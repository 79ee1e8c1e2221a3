/*
 * alloc.c: see alloc.h. Thin on purpose: the C library's allocator keeps per-thread size
 * classes, which is what the store's hot paths need; a replacement goes here.
 */
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

void *cray__malloc(size_t n) { return malloc(n ? n : 1); }

void *cray__calloc(size_t count, size_t n) { return calloc(count ? count : 1, n ? n : 1); }

void *cray__realloc(void *p, size_t n) { return realloc(p, n ? n : 1); }

void cray__free(void *p) { free(p); }

char *cray__strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = cray__malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}
