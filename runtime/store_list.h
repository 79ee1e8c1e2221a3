/*
 * store_list.h: what the store holds, object by object (runtime/store_list.c).
 */
#ifndef CRAY_STORE_LIST_H
#define CRAY_STORE_LIST_H

#include <stddef.h>

#include "store.h"

enum { CRAY__OBJECT_PENDING, CRAY__OBJECT_MEMORY, CRAY__OBJECT_DISK, CRAY__OBJECT_ERROR };

typedef struct cray__object_info {
  cray_id id;
  uint64_t bytes; /* the value's bytes (0 while pending) */
  int where;      /* CRAY__OBJECT_* */
  uint32_t refs;  /* references that hold it: refs in Lua states, tasks, nesting blobs */
  uint32_t site;  /* who made it (runtime/sites.h), 0 when unknown */
} cray__object_info;

/* Every object but actors' entries, largest first, in *out (the caller frees it with
 * cray__free); CRAY_ENOMEM when memory is short. */
int cray__store_list(cray__store *s, cray__object_info **out, size_t *n);

#endif
