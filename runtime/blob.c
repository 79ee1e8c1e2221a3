/*
 * blob.c: see blob.h. One allocation holds header, ref table and bytes; the bytes start
 * 16-byte aligned so FFI arrays inside can be viewed in place.
 */
#include "blob.h"

#include <string.h>

#include "alloc.h"
#include "id.h"
#include "wire.h"
#include "store.h"

#define ALIGN16(n) (((n) + 15) & ~(size_t)15)

cray__blob *cray__blob_new(const uint8_t *data, size_t len, uint32_t count,
                           struct cray__entry *const *refs, uint32_t nrefs, uint32_t flags) {
  size_t head = ALIGN16(sizeof(cray__blob) + nrefs * sizeof(cray__entry *));
  if (len > SIZE_MAX - head) return NULL;
  cray__blob *b = cray__malloc(head + len);
  if (!b) return NULL;
  atomic_init(&b->rc, 1);
  b->count = count;
  b->nrefs = nrefs;
  b->flags = flags;
  b->len = len;
  b->refs = (cray__entry **)(b + 1);
  b->data = (uint8_t *)b + head;
  for (uint32_t i = 0; i < nrefs; i++) {
    cray__store_retain(refs[i]);
    b->refs[i] = refs[i];
  }
  if (len) memcpy(b->data, data, len);
  return b;
}

void cray__blob_release(struct cray__store *s, cray__blob *b) {
  if (atomic_fetch_sub_explicit(&b->rc, 1, memory_order_acq_rel) != 1) return;
  for (uint32_t i = 0; i < b->nrefs; i++) cray__store_release(s, b->refs[i]);
  cray__free(b);
}

/* ---- blobs from outside ---- */

typedef struct ref_list {
  cray__entry **v;
  uint32_t n, cap;
} ref_list;

static int ref_list_add(ref_list *l, cray__entry *e) {
  if (l->n == l->cap) {
    uint32_t cap = l->cap ? l->cap * 2 : 8;
    cray__entry **v = cray__realloc(l->v, cap * sizeof *v);
    if (!v) return CRAY_ENOMEM;
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n++] = e;
  return 0;
}

#define PARSE_MAX_DEPTH 128

/* Walks one value, collecting the entries its refs name (each looked up, so held). Ext
 * payloads that nest MessagePack are walked too, in the order the codec reads them. */
static int parse_value(cray__store *s, cray__mp_reader *r, ref_list *refs, int depth) {
  cray__mp_item it;
  int rc = cray__mp_next(r, &it);
  if (rc) return rc;
  if (depth > PARSE_MAX_DEPTH) return CRAY_EBADBLOB;
  switch (it.type) {
    case CRAY__MP_ARRAY:
    case CRAY__MP_MAP: {
      uint64_t count = it.type == CRAY__MP_MAP ? 2 * (uint64_t)it.n : it.n;
      if (count > (uint64_t)(r->end - r->p)) return CRAY_EBADBLOB;
      for (uint64_t i = 0; i < count; i++)
        if ((rc = parse_value(s, r, refs, depth + 1))) return rc;
      return 0;
    }
    case CRAY__MP_EXT:
      switch (it.ext) {
        case CRAY__EXT_REF: {
          if (it.n != 16) return CRAY_EBADBLOB;
          cray_id id = cray__id_load(it.p);
          cray__entry *e = cray__store_lookup(s, &id);
          if (!e) return CRAY_ENOTFOUND;
          if ((rc = ref_list_add(refs, e))) cray__store_release(s, e);
          return rc;
        }
        case CRAY__EXT_FUNCTION:
        case CRAY__EXT_ERROR:
        case CRAY__EXT_CLASS: {
          cray__mp_reader sub = {it.p, it.p + it.n};
          if ((rc = parse_value(s, &sub, refs, depth + 1))) return rc;
          return sub.p == sub.end ? 0 : CRAY_EBADBLOB;
        }
        default:
          return 0;
      }
    default:
      return 0;
  }
}

int cray__blob_parse(struct cray__store *s, const uint8_t *data, size_t len, cray__blob **out) {
  ref_list refs = {NULL, 0, 0};
  cray__mp_reader r = {data, data + len};
  int rc = parse_value(s, &r, &refs, 0);
  if (rc == 0 && r.p != r.end) rc = CRAY_EBADBLOB;
  cray__blob *b = NULL;
  if (rc == 0 && !(b = cray__blob_new(data, len, 1, refs.v, refs.n, 0))) rc = CRAY_ENOMEM;
  for (uint32_t i = 0; i < refs.n; i++) cray__store_release(s, refs.v[i]);
  cray__free(refs.v);
  if (rc == 0) *out = b;
  return rc;
}
