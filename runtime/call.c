/*
 * call.c: see call.h.
 */
#include "call.h"

#include <string.h>

#include "alloc.h"
#include "runtime.h"
#include "wire.h"

typedef struct cray__named {
  struct cray__named *next;
  cray__entry *e; /* one reference, dropped at close */
  char name[];
} cray__named;

void cray__names_init(cray__names *n) {
  pthread_mutex_init(&n->mu, NULL);
  n->head = NULL;
}

void cray__names_free(cray__names *n, cray__store *s) {
  for (cray__named *p = n->head, *next; p; p = next) {
    next = p->next;
    cray__store_release(s, p->e);
    cray__free(p);
  }
  n->head = NULL;
  pthread_mutex_destroy(&n->mu);
}

/* A new object holding the string name, with one reference. */
static cray__entry *store_name(cray_runtime *rt, const char *name) {
  cray__buf b;
  cray__buf_init(&b);
  cray__mp_str(&b, name, strlen(name));
  cray__blob *blob = b.failed ? NULL : cray__blob_new(b.data, b.len, 1, NULL, 0, 0);
  cray__buf_free(&b);
  if (!blob) return NULL;
  cray__entry *e = cray__store_insert(rt->store, cray__id_new(&rt->ids), blob);
  if (!e) cray__blob_release(rt->store, blob);
  return e;
}

cray__entry *cray__named_entry(cray_runtime *rt, const char *name) {
  cray__names *n = &rt->names;
  pthread_mutex_lock(&n->mu);
  cray__named *p = n->head;
  while (p && strcmp(p->name, name) != 0) p = p->next;
  if (!p) {
    size_t len = strlen(name) + 1;
    cray__entry *e = store_name(rt, name);
    if (e && (p = cray__malloc(sizeof *p + len))) {
      p->e = e;
      memcpy(p->name, name, len);
      p->next = n->head;
      n->head = p;
    } else if (e) {
      cray__store_release(rt->store, e);
    }
  }
  cray__entry *e = p ? p->e : NULL;
  if (e) cray__store_retain(e);
  pthread_mutex_unlock(&n->mu);
  return e;
}

static int ident_char(char c) {
  return c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

int cray__call_ident_ok(const char *s, size_t max) {
  size_t n = strlen(s);
  for (size_t i = 0; i < n; i++)
    if (!ident_char(s[i])) return 0;
  return n > 0 && n <= max;
}

int cray__call_name_ok(const char *name) {
  const char *dot = strrchr(name, '.');
  if (!dot || dot == name || !dot[1]) return 0;
  for (const char *p = name; *p; p++)
    if (*p != '.' && !ident_char(*p)) return 0;
  return strlen(name) < 256;
}

/* The entries of the refs at the top level of the values in b, looked up (held) into
 * deps[] with their positions in pos[]; returns how many, or a negative code. With deps
 * NULL it only counts. */
static int top_refs(cray__store *s, const cray__blob *b, cray__entry **deps, uint32_t *pos) {
  cray__mp_reader r = {b->data, b->data + b->len};
  int n = 0;
  for (uint32_t i = 0; i < b->count; i++) {
    cray__mp_reader at = r;
    cray__mp_item it;
    if (cray__mp_next(&at, &it) != 0 || cray__mp_skip(&r, 128) != 0) return CRAY_EBADBLOB;
    if (it.type != CRAY__MP_EXT || it.ext != CRAY__EXT_REF || it.n != 16) continue;
    if (deps) {
      cray_id id = cray__id_load(it.p);
      if (!(deps[n] = cray__store_lookup(s, &id))) return CRAY_ENOTFOUND;
      pos[n] = i;
    }
    n++;
  }
  return n;
}

int cray__call_task(cray_runtime *rt, const char *name, const void *args, size_t len,
                    uint32_t nreturns, cray__task **out) {
  if (!args) return CRAY_EINVAL;
  cray__mp_reader r = {args, (const uint8_t *)args + len};
  cray__mp_item it;
  if (cray__mp_next(&r, &it) != 0 || it.type != CRAY__MP_ARRAY) return CRAY_EBADBLOB;
  cray__blob *blob = NULL;
  int ndeps = 0;
  if (it.n > 0) {
    uint32_t count = it.n;
    size_t rest = (size_t)(r.end - r.p);
    int rc = cray__store_reserve(rt->store, rest, 1);
    if (rc || (rc = cray__blob_parse_values(rt->store, r.p, rest, &count, &blob))) return rc;
    if ((ndeps = top_refs(rt->store, blob, NULL, NULL)) < 0) {
      cray__blob_release(rt->store, blob);
      return ndeps;
    }
  } else if (r.p != r.end) {
    return CRAY_EBADBLOB;
  }
  cray__task *t = cray__task_new(nreturns, (uint32_t)ndeps, 0, name);
  if (!t) {
    if (blob) cray__blob_release(rt->store, blob);
    return CRAY_ENOMEM;
  }
  t->id = cray__id_new(&rt->ids);
  t->args = blob;
  int rc = 0;
  if (blob) {
    cray__store_count_bytes(rt->store, (int64_t)blob->len);
    if (ndeps) rc = top_refs(rt->store, blob, t->deps, t->dep_arg);
  }
  for (uint32_t i = 0; rc >= 0 && i < nreturns; i++) {
    t->returns[i] = cray__store_insert(rt->store, cray__id_with_index(t->id, i + 1), NULL);
    if (!t->returns[i]) rc = CRAY_ENOMEM;
  }
  if (rc < 0) {
    cray__task_release(rt->store, t);
    return rc;
  }
  *out = t;
  return 0;
}
