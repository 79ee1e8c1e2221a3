/*
 * cfunc.c: see cfunc.h. Registration and cray_buffer are the public half; running a task
 * is the scheduler's.
 *
 * A registration is never freed before cray_close, so a task copies the function and user
 * data out under the lock and calls them unlocked; a replacement applies to tasks that
 * start afterwards.
 */
#include "cfunc.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "call.h"
#include "id.h"
#include "runtime.h"
#include "sched.h"
#include "wire.h"

#define NAME_MAX_LEN 256 /* "c.NAME", NUL included */
#define MAX_DEPTH 128    /* nesting the runtime walks in arguments and results */

typedef struct cray__cfunc {
  struct cray__cfunc *next;
  cray_cfunction fn;
  void *ud;
  char name[]; /* "c.NAME" */
} cray__cfunc;

struct cray_buffer {
  cray__buf buf;
};

void cray__cfuncs_init(cray__cfuncs *r) {
  pthread_mutex_init(&r->mu, NULL);
  r->head = NULL;
}

void cray__cfuncs_free(cray__cfuncs *r) {
  for (cray__cfunc *f = r->head, *next; f; f = next) {
    next = f->next;
    cray__free(f);
  }
  r->head = NULL;
  pthread_mutex_destroy(&r->mu);
}

/* The registration named full[0..len), under r->mu. */
static cray__cfunc *find(cray__cfuncs *r, const char *full, size_t len) {
  for (cray__cfunc *f = r->head; f; f = f->next)
    if (strlen(f->name) == len && memcmp(f->name, full, len) == 0) return f;
  return NULL;
}

/* Copies out the function and user data registered as full[0..len); 0 when none. */
static int lookup(cray__cfuncs *r, const char *full, size_t len, cray_cfunction *fn, void **ud) {
  pthread_mutex_lock(&r->mu);
  cray__cfunc *f = find(r, full, len);
  if (f) *fn = f->fn, *ud = f->ud;
  pthread_mutex_unlock(&r->mu);
  return f != NULL;
}

int cray__cfunc_exists(cray__cfuncs *r, const char *full, size_t len) {
  cray_cfunction fn;
  void *ud;
  return lookup(r, full, len, &fn, &ud);
}

int cray_register(cray_runtime *rt, const char *name, cray_cfunction fn, void *ud) {
  if (!rt || !name || !fn) return CRAY_EINVAL;
  if (!cray__call_ident_ok(name, NAME_MAX_LEN - 3)) return CRAY_EINVAL;
  size_t n = strlen(name);
  cray__cfunc *f = cray__malloc(sizeof *f + n + 3);
  if (!f) return CRAY_ENOMEM;
  memcpy(f->name, "c.", 2);
  memcpy(f->name + 2, name, n + 1);
  f->fn = fn;
  f->ud = ud;
  cray__cfuncs *r = &rt->cfuncs;
  pthread_mutex_lock(&r->mu);
  cray__cfunc *old = find(r, f->name, n + 2);
  if (old) {
    old->fn = fn;
    old->ud = ud;
  } else {
    f->next = r->head;
    r->head = f;
  }
  pthread_mutex_unlock(&r->mu);
  if (old) cray__free(f);
  return 0;
}

int cray_buffer_append(cray_buffer *out, const void *data, size_t len) {
  if (!out || (!data && len)) return CRAY_EINVAL;
  cray__buf_write(&out->buf, data, len);
  return out->buf.failed ? CRAY_ENOMEM : 0;
}

/* Whether the function object e is the string "c.NAME": copies it into name[NAME_MAX_LEN]. */
static int c_name(cray__store *s, cray__entry *e, char *name) {
  cray__blob *b;
  if (cray__store_pin(s, e, &b) != 0) return 0;
  cray__mp_reader r = {b->data, b->data + b->len};
  cray__mp_item it;
  int is_c = b->count == 1 && cray__mp_next(&r, &it) == 0 && it.type == CRAY__MP_STR &&
             it.n >= 2 && it.n < NAME_MAX_LEN && it.p[0] == 'c' && it.p[1] == '.';
  if (is_c) {
    memcpy(name, it.p, it.n);
    name[it.n] = 0;
  }
  cray__store_unpin(e);
  return is_c;
}

/* The arguments as one MessagePack array, a top-level ref replaced by its object's first
 * value. 0, or a negative code. */
static int build_args(cray__store *s, const cray__task *t, cray__buf *out) {
  uint32_t n = t->args ? t->args->count : 0;
  cray__mp_array(out, n);
  if (n == 0) return out->failed ? CRAY_ENOMEM : 0;
  cray__mp_reader r = {t->args->data, t->args->data + t->args->len};
  for (uint32_t i = 0; i < n; i++) {
    const uint8_t *start = r.p;
    cray__mp_reader at = r;
    cray__mp_item it;
    if (cray__mp_next(&at, &it) != 0) return CRAY_EBADBLOB;
    if (it.type != CRAY__MP_EXT || it.ext != CRAY__EXT_REF || it.n != 16) {
      if (cray__mp_skip(&r, MAX_DEPTH) != 0) return CRAY_EBADBLOB;
      cray__buf_write(out, start, (size_t)(r.p - start));
      continue;
    }
    r = at;
    cray_id id = cray__id_load(it.p);
    cray__entry *e = cray__store_lookup(s, &id); /* the task holds it: it is there */
    cray__blob *b;
    if (!e) return CRAY_ENOTFOUND;
    int rc = cray__store_pin(s, e, &b);
    if (rc == 0) {
      cray__mp_reader v = {b->data, b->data + b->len};
      if (b->count == 0) cray__mp_nil(out); /* a task that returned nothing: nil, as in Lua */
      else if ((rc = cray__mp_skip(&v, MAX_DEPTH)) == 0)
        cray__buf_write(out, b->data, (size_t)(v.p - b->data));
      cray__store_unpin(e);
    }
    cray__store_release(s, e);
    if (rc) return rc;
  }
  return out->failed ? CRAY_ENOMEM : 0;
}

/* Resolves t's returns with the values data[0..len): all of them in one object, or one
 * value to each of t->nreturns objects. 0, or a negative code with *why set. */
static int store_results(cray__store *s, cray__task *t, const uint8_t *data, size_t len,
                         const char **why) {
  *why = "malformed MessagePack";
  if (cray__store_reserve(s, len, 1) != 0) return *why = "no room in the object store", CRAY_ENOMEM;
  if (t->all_values) {
    uint32_t count = UINT32_MAX;
    cray__blob *b;
    int rc = cray__blob_parse_values(s, data, len, &count, &b);
    if (rc) return rc;
    cray__sched_count_success(t, len);
    if (cray__store_resolve(s, t->returns[0], b, 0) != 0) cray__blob_release(s, b);
    return 0;
  }
  cray__blob **blobs = t->nreturns ? cray__calloc(t->nreturns, sizeof *blobs) : NULL;
  if (t->nreturns && !blobs) return *why = "no memory", CRAY_ENOMEM;
  cray__mp_reader r = {data, data + len};
  int rc = 0;
  for (uint32_t i = 0; i < t->nreturns && rc == 0; i++) {
    const uint8_t *start = r.p;
    uint32_t one = 1;
    if (r.p == r.end) *why = "fewer values than num_returns", rc = CRAY_EBADBLOB;
    else if ((rc = cray__mp_skip(&r, MAX_DEPTH)) == 0)
      rc = cray__blob_parse_values(s, start, (size_t)(r.p - start), &one, &blobs[i]);
  }
  if (rc == 0 && r.p != r.end) *why = "more values than num_returns", rc = CRAY_EBADBLOB;
  if (rc == 0) {
    cray__sched_count_success(t, len);
    for (uint32_t i = 0; i < t->nreturns; i++)
      if (cray__store_resolve(s, t->returns[i], blobs[i], 0) != 0) cray__blob_release(s, blobs[i]);
  } else {
    for (uint32_t i = 0; i < t->nreturns; i++)
      if (blobs[i]) cray__blob_release(s, blobs[i]);
  }
  cray__free(blobs);
  return rc;
}

int cray__cfunc_run(cray_runtime *rt, cray__task *t) {
  char name[NAME_MAX_LEN];
  if (!c_name(rt->store, t->fn, name)) return -1;
  cray_cfunction fn;
  void *ud;
  if (!lookup(&rt->cfuncs, name, strlen(name), &fn, &ud)) {
    t->error = cray__error_blob("task_error", t->name, NULL,
                                "no C function is registered as '%s' (cray_register)", name);
    return CRAY__RUN_RAISED;
  }
  cray__buf args;
  cray__buf_init(&args);
  int rc = build_args(rt->store, t, &args);
  if (rc) {
    cray__buf_free(&args);
    t->error = cray__error_blob("task_error", t->name, NULL,
                                "the arguments of C function '%s' could not be read: %s", name,
                                cray_err_name(rc));
    return CRAY__RUN_RAISED;
  }
  struct cray_buffer out;
  cray__buf_init(&out.buf);
  rc = fn(ud, args.data, args.len, &out);
  cray__buf_free(&args);
  const char *why = NULL;
  int failed = 1;
  if (rc < 0) {
    t->error = cray__error_blob("task_error", t->name, NULL, "C function '%s' returned %d (%s: %s)",
                                name, rc, cray_err_name(rc), cray_strerror(rc));
  } else if (out.buf.failed) {
    t->error = cray__error_blob("out_of_memory", t->name, NULL,
                                "no memory for the results of C function '%s'", name);
  } else if ((rc = store_results(rt->store, t, out.buf.data, out.buf.len, &why)) != 0) {
    t->error = cray__error_blob(rc == CRAY_ENOMEM ? "out_of_memory" : "task_error", t->name,
                                NULL, "C function '%s' appended results that cannot be stored: %s",
                                name, why);
  } else {
    failed = 0;
  }
  cray__buf_free(&out.buf);
  return failed ? CRAY__RUN_RAISED : CRAY__RUN_DONE;
}
