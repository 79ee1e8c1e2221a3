/*
 * blob.c: see blob.h. One allocation holds header, ref table and bytes; the bytes start
 * 16-byte aligned (malloc's alignment, or a page) so FFI arrays inside can be viewed in
 * place.
 */
#include "blob.h"

#include <string.h>

#include "alloc.h"
#include "bigmem.h"
#include "id.h"
#include "wire.h"
#include "store.h"

#define ALIGN16(n) (((n) + 15) & ~(size_t)15)

static size_t head_size(uint32_t nrefs) {
  return ALIGN16(sizeof(cray__blob) + nrefs * sizeof(cray__entry *));
}

/* A blob header with room for `room` bytes of data (0 for a husk); refs not filled. */
static cray__blob *make(struct cray__store *s, size_t room, size_t len, uint32_t count,
                        uint32_t nrefs, uint32_t flags) {
  size_t head = head_size(nrefs);
  if (room > SIZE_MAX - head) return NULL;
  flags &= ~(uint32_t)CRAY__BLOB_MAPPED;
  cray__blob *b;
  if (head + room >= CRAY__BIG_MIN) {
    b = cray__bigmem_alloc(cray__store_bigmem(s), head + room);
    flags |= CRAY__BLOB_MAPPED;
  } else {
    b = cray__malloc(head + room);
  }
  if (!b) return NULL;
  atomic_init(&b->rc, 1);
  b->count = count;
  b->nrefs = nrefs;
  b->flags = flags;
  b->len = len;
  atomic_init(&b->aux, NULL);
  b->data = (flags & CRAY__BLOB_SPILLED) ? NULL : (uint8_t *)b + head;
  return b;
}

cray__blob *cray__blob_alloc(struct cray__store *s, size_t len, uint32_t count,
                             struct cray__entry *const *refs, uint32_t nrefs, uint32_t flags) {
  cray__blob *b = make(s, len, len, count, nrefs, flags & ~(uint32_t)CRAY__BLOB_SPILLED);
  if (!b) return NULL;
  for (uint32_t i = 0; i < nrefs; i++) {
    cray__store_retain(refs[i]);
    b->refs[i] = refs[i];
  }
  return b;
}

cray__blob *cray__blob_new(const uint8_t *data, size_t len, uint32_t count,
                           struct cray__entry *const *refs, uint32_t nrefs, uint32_t flags) {
  cray__blob *b = cray__blob_alloc(NULL, len, count, refs, nrefs, flags);
  if (b && len) memcpy(b->data, data, len);
  return b;
}

void cray__blob_init_inline(cray__blob *b, const uint8_t *data, size_t len, uint32_t count,
                            uint32_t flags) {
  atomic_init(&b->rc, 1);
  b->count = count;
  b->nrefs = 0;
  b->flags = (flags & (uint32_t)CRAY__BLOB_TRUSTED) | CRAY__BLOB_INLINE;
  b->len = len;
  b->data = (uint8_t *)b + offsetof(cray__blob, aux);
  if (len) memcpy(b->data, data, len);
}

void cray__blob_free_shell(struct cray__store *s, cray__blob *b) {
  if (b->flags & CRAY__BLOB_INLINE) {
    cray__store_free_inline(b);
    return;
  }
  cray__free(atomic_load_explicit(&b->aux, memory_order_acquire)); /* the last holder */
  if (b->flags & CRAY__BLOB_MAPPED) {
    size_t room = (b->flags & CRAY__BLOB_SPILLED) ? 0 : b->len;
    cray__bigmem_free((b->flags & CRAY__BLOB_ORPHAN) ? NULL : cray__store_bigmem(s), b,
                      head_size(b->nrefs) + room);
  } else {
    cray__free(b);
  }
}

void cray__blob_release(struct cray__store *s, cray__blob *b) {
  /* acquire: a count of 1 is ours alone (no holder is left to take another), and every
   * earlier holder's release of it happened before the free; else a holder's atomic drop */
  if (atomic_load_explicit(&b->rc, memory_order_acquire) != 1 &&
      atomic_fetch_sub_explicit(&b->rc, 1, memory_order_acq_rel) != 1)
    return;
  if (!(b->flags & CRAY__BLOB_ORPHAN))
    for (uint32_t i = 0; i < b->nrefs; i++) cray__store_release(s, b->refs[i]);
  cray__blob_free_shell(s, b);
}

cray__blob *cray__blob_husk(const cray__blob *b) {
  cray__blob *h = make(NULL, 0, b->len, b->count, b->nrefs, b->flags | CRAY__BLOB_SPILLED);
  if (h && b->nrefs) memcpy(h->refs, b->refs, b->nrefs * sizeof *b->refs);
  return h;
}

cray__blob *cray__blob_unhusk(struct cray__store *s, const cray__blob *husk) {
  cray__blob *b = make(s, husk->len, husk->len, husk->count, husk->nrefs,
                       husk->flags & ~(uint32_t)CRAY__BLOB_SPILLED);
  if (b && husk->nrefs) memcpy(b->refs, husk->refs, husk->nrefs * sizeof *b->refs);
  return b;
}

void cray__blob_orphan(cray__blob *b) {
  /* nrefs stays: it sizes the allocation. The refs themselves are never read again. */
  b->flags |= CRAY__BLOB_ORPHAN;
  if (atomic_fetch_sub_explicit(&b->rc, 1, memory_order_acq_rel) == 1)
    cray__blob_free_shell(NULL, b);
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

int cray__blob_parse_values(struct cray__store *s, const uint8_t *data, size_t len,
                            uint32_t *count, cray__blob **out) {
  ref_list refs = {NULL, 0, 0};
  cray__mp_reader r = {data, data + len};
  uint32_t n = 0;
  int rc = 0;
  while (rc == 0 && r.p != r.end) {
    if (n == UINT32_MAX) rc = CRAY_EBADBLOB;
    else if ((rc = parse_value(s, &r, &refs, 0)) == 0) n++;
  }
  if (rc == 0 && *count != UINT32_MAX && n != *count) rc = CRAY_EBADBLOB;
  cray__blob *b = NULL;
  if (rc == 0 && !(b = cray__blob_new(data, len, n, refs.v, refs.n, 0))) rc = CRAY_ENOMEM;
  for (uint32_t i = 0; i < refs.n; i++) cray__store_release(s, refs.v[i]);
  cray__free(refs.v);
  if (rc == 0) *out = b, *count = n;
  return rc;
}

int cray__blob_parse(struct cray__store *s, const uint8_t *data, size_t len, cray__blob **out) {
  uint32_t one = 1;
  return cray__blob_parse_values(s, data, len, &one, out);
}
