/*
 * alloc.h: the one allocation path of the runtime.
 *
 * Every byte the runtime allocates goes through these functions, so it can be counted and
 * replaced in one place. Small blocks come from the C library's per-thread caches, which
 * serve as slabs for the store's entries and small blobs.
 */
#ifndef CRAY_ALLOC_H
#define CRAY_ALLOC_H

#include <stddef.h>

void *cray__malloc(size_t n);
void *cray__calloc(size_t count, size_t n);
void *cray__realloc(void *p, size_t n);
void cray__free(void *p);
char *cray__strdup(const char *s);

#endif
