/*
 * classes.h: the runtime's table of published classes: a name and the blob of its
 * metatable, so that a state which meets a table of a class it does not know (a worker
 * decoding a task's argument) can load the metatable and register it too.
 *
 * A mutex guards the table; it is read only when a state meets a class for the first time.
 */
#ifndef CRAY_CLASSES_H
#define CRAY_CLASSES_H

#include <pthread.h>
#include <stddef.h>

#include "blob.h"

typedef struct cray__class cray__class;

typedef struct cray__classes {
  pthread_mutex_t mu;
  cray__class *head;
} cray__classes;

void cray__classes_init(cray__classes *c);
/* Frees the table; its blobs are released into s. */
void cray__classes_free(cray__classes *c, struct cray__store *s);

/* Publishes `name` (len bytes) with its metatable's blob, taking over the caller's blob
 * reference. A name published already keeps its first blob (b is released then).
 * 0 or CRAY_ENOMEM. */
int cray__classes_put(cray__classes *c, struct cray__store *s, const char *name, size_t len,
                      cray__blob *b);
/* The blob published under `name`, with a reference for the caller, or NULL. */
cray__blob *cray__classes_get(cray__classes *c, const char *name, size_t len);

#endif
