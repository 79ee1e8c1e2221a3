/*
 * classes.c: see classes.h. A list: a program registers a handful of classes.
 */
#include "classes.h"

#include <string.h>

#include "alloc.h"
#include "cray.h"

struct cray__class {
  char *name;
  size_t len;
  cray__blob *mt;
  cray__class *next;
};

void cray__classes_init(cray__classes *c) {
  pthread_mutex_init(&c->mu, NULL);
  c->head = NULL;
}

void cray__classes_free(cray__classes *c, struct cray__store *s) {
  while (c->head) {
    cray__class *k = c->head;
    c->head = k->next;
    cray__blob_release(s, k->mt);
    cray__free(k->name);
    cray__free(k);
  }
  pthread_mutex_destroy(&c->mu);
}

static cray__class *find(cray__classes *c, const char *name, size_t len) {
  for (cray__class *k = c->head; k; k = k->next)
    if (k->len == len && memcmp(k->name, name, len) == 0) return k;
  return NULL;
}

int cray__classes_put(cray__classes *c, struct cray__store *s, const char *name, size_t len,
                      cray__blob *b) {
  cray__class *k = cray__malloc(sizeof *k);
  char *copy = cray__malloc(len);
  if (!k || !copy) {
    cray__free(k);
    cray__free(copy);
    cray__blob_release(s, b);
    return CRAY_ENOMEM;
  }
  memcpy(copy, name, len);
  pthread_mutex_lock(&c->mu);
  int taken = find(c, name, len) != NULL;
  if (!taken) {
    *k = (cray__class){copy, len, b, c->head};
    c->head = k;
  }
  pthread_mutex_unlock(&c->mu);
  if (taken) {
    cray__blob_release(s, b);
    cray__free(copy);
    cray__free(k);
  }
  return 0;
}

cray__blob *cray__classes_get(cray__classes *c, const char *name, size_t len) {
  pthread_mutex_lock(&c->mu);
  cray__class *k = find(c, name, len);
  cray__blob *b = k ? k->mt : NULL;
  if (b) cray__blob_retain(b);
  pthread_mutex_unlock(&c->mu);
  return b;
}
