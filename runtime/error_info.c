/*
 * error_info.c: cray_error_info, the parts of an error object for C.
 *
 * An error object is an ext 5 ERROR holding a map (docs/format.md). Its string fields are
 * not NUL-terminated inside the blob, so the first call copies them, with a NUL each, into
 * one allocation hung on the blob (`aux`): they then live exactly as long as the bytes of
 * every view of that blob, with nothing for the caller to free. Two threads that read
 * the same blob at once both build a copy; one wins the compare-and-swap and the other
 * frees its own, so the copy is made once per blob and never changes afterwards.
 */
#include <string.h>

#include "alloc.h"
#include "blob.h"
#include "cray.h"
#include "wire.h"

enum { F_KIND, F_MESSAGE, F_TRACEBACK, F_TASK, F_CAUSE_KIND, NFIELDS };

static const char *const field_names[] = {"kind", "message", "traceback", "task"};

typedef struct span {
  const uint8_t *p;
  uint32_t n;
  int set;
} span;

/* Reads the error object at r (an ext 5 holding a map) into fields[0..F_CAUSE_KIND);
 * with cause set, also its cause's kind into *cause. 0 or CRAY_EINVAL. */
static int read_error(cray__mp_reader *r, span *fields, span *cause) {
  cray__mp_item it;
  if (cray__mp_next(r, &it) || it.type != CRAY__MP_EXT || it.ext != CRAY__EXT_ERROR)
    return CRAY_EINVAL;
  cray__mp_reader m = {it.p, it.p + it.n};
  if (cray__mp_next(&m, &it) || it.type != CRAY__MP_MAP) return CRAY_EINVAL;
  for (uint32_t i = 0, n = it.n; i < n; i++) {
    cray__mp_item key;
    if (cray__mp_next(&m, &key)) return CRAY_EINVAL;
    int which = -1;
    if (key.type == CRAY__MP_STR) {
      for (int f = 0; f < F_CAUSE_KIND; f++)
        if (strlen(field_names[f]) == key.n && memcmp(field_names[f], key.p, key.n) == 0)
          which = f;
      if (cause && key.n == 5 && memcmp(key.p, "cause", 5) == 0) {
        cray__mp_reader peek = m;
        span inner[F_CAUSE_KIND] = {{0}};
        if (read_error(&peek, inner, NULL) == 0) *cause = inner[F_KIND];
      }
    }
    cray__mp_reader at = m;
    cray__mp_item val;
    if (which >= 0 && cray__mp_next(&at, &val) == 0 && val.type == CRAY__MP_STR)
      fields[which] = (span){val.p, val.n, 1};
    if (cray__mp_skip(&m, 64)) return CRAY_EINVAL;
  }
  return fields[F_KIND].set && fields[F_MESSAGE].set ? 0 : CRAY_EINVAL;
}

/* One allocation: the cray_error, then its strings. */
static cray_error *copy_fields(const span *fields) {
  size_t size = sizeof(cray_error);
  for (int f = 0; f < NFIELDS; f++)
    if (fields[f].set) size += fields[f].n + 1;
  cray_error *e = cray__malloc(size);
  if (!e) return NULL;
  const char **slot[NFIELDS] = {&e->kind, &e->message, &e->traceback, &e->task, &e->cause_kind};
  char *p = (char *)(e + 1);
  for (int f = 0; f < NFIELDS; f++) {
    *slot[f] = NULL;
    if (!fields[f].set) continue;
    memcpy(p, fields[f].p, fields[f].n);
    p[fields[f].n] = 0;
    *slot[f] = p;
    p += fields[f].n + 1;
  }
  return e;
}

int cray_error_info(const cray_view *v, cray_error *out) {
  if (!v || !out || !v->owner || !v->data) return CRAY_EINVAL;
  cray__blob *b = v->owner;
  /* An inline blob's bytes are where `aux` would be; and at 8 bytes or less they cannot
   * hold an error object's kind and message, so it is never one. */
  if (b->flags & CRAY__BLOB_INLINE) return CRAY_EINVAL;
  /* acquire: the strings another thread wrote before publishing them */
  cray_error *e = atomic_load_explicit(&b->aux, memory_order_acquire);
  if (!e) {
    span fields[NFIELDS] = {{0}};
    cray__mp_reader r = {v->data, v->data + v->len};
    if (read_error(&r, fields, &fields[F_CAUSE_KIND]) != 0) return CRAY_EINVAL;
    cray_error *mine = copy_fields(fields);
    if (!mine) return CRAY_ENOMEM;
    void *expected = NULL;
    /* acq_rel: publish our strings, or see the winner's */
    if (atomic_compare_exchange_strong_explicit(&b->aux, &expected, mine, memory_order_acq_rel,
                                                memory_order_acquire)) {
      e = mine;
    } else {
      cray__free(mine);
      e = expected;
    }
  }
  *out = *e;
  return 0;
}
