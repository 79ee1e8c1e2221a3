/*
 * blob.h: immutable, reference-counted byte blobs, the form every stored value takes.
 *
 * A blob holds `count` MessagePack values back to back (a task's returns, or one put
 * value) and the entries of the ObjectRefs nested inside them, in the order they occur,
 * each holding one store reference for as long as the blob lives. Header, ref table and
 * bytes share one allocation: from cray__malloc, or for a megabyte and more a block of
 * the store's cray__bigmem, or for a small value with no refs the allocation of its store
 * entry (CRAY__BLOB_INLINE, store.h), which then lasts until both the entry and the blob
 * are done with it. A blob never changes once its bytes are written, so any thread may
 * read it while it holds a reference.
 *
 * Spilling (store.h) keeps a blob's header and ref table in memory as a *husk* while its
 * bytes are on disk: the refs nested in a spilled value keep their objects alive. A blob
 * still referenced (by a view) when its store closes becomes an *orphan*: its refs are
 * forgotten (their entries are gone) and its last release frees it without a store.
 */
#ifndef CRAY_BLOB_H
#define CRAY_BLOB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct cray__entry;
struct cray__store;

enum {
  CRAY__BLOB_TRUSTED = 1, /* made in this process by the codec: functions may load */
  CRAY__BLOB_MAPPED = 2,  /* the allocation is a cray__bigmem block */
  CRAY__BLOB_SPILLED = 4, /* a husk: header and refs only, the bytes are on disk */
  CRAY__BLOB_ORPHAN = 8,  /* outlived its store; refs dropped */
  CRAY__BLOB_INLINE = 16, /* made inside its entry's allocation (store.h): a small value */
};

typedef struct cray__blob {
  _Atomic uint32_t rc;
  uint32_t count; /* top-level values */
  uint32_t nrefs; /* nested ObjectRefs */
  uint32_t flags;
  size_t len;
  uint8_t *data;             /* len bytes, 16-byte aligned (8 when inline); NULL in a husk */
  _Atomic(void *) aux;       /* what cray_error_info read from it (made once, by CAS),
                                freed with the blob; NULL until then. An inline
                                blob has none: its bytes start here */
  struct cray__entry *refs[]; /* nrefs entries, one reference each */
} cray__blob;

/* A new blob with rc 1 and room for len bytes, to be written before anyone else sees it;
 * takes a reference on each of refs[0..nrefs). Big ones come from s's cray__bigmem (s
 * may be NULL). NULL when memory is short (nothing is taken then). */
cray__blob *cray__blob_alloc(struct cray__store *s, size_t len, uint32_t count,
                             struct cray__entry *const *refs, uint32_t nrefs, uint32_t flags);
/* cray__blob_alloc, then a copy of data[0..len). */
cray__blob *cray__blob_new(const uint8_t *data, size_t len, uint32_t count,
                           struct cray__entry *const *refs, uint32_t nrefs, uint32_t flags);

/* Makes the header of a CRAY__BLOB_INLINE blob at b, with rc 1, no refs and a copy of
 * data[0..len), placed where `aux` would be: such a blob has no `aux` (its bytes are too
 * few for an error object) and no ref table (the store's small entries, store.c). */
void cray__blob_init_inline(cray__blob *b, const uint8_t *data, size_t len, uint32_t count,
                            uint32_t flags);

static inline void cray__blob_retain(cray__blob *b) {
  atomic_fetch_add_explicit(&b->rc, 1, memory_order_relaxed);
}

/* Drops one reference; the last one frees the blob and releases its nested refs. An
 * orphan needs no store (s is not used). */
void cray__blob_release(struct cray__store *s, cray__blob *b);

/* ---- for the store's spilling and closing ---- */

/* A husk of b: its header and refs (moved, not retained: free b with free_shell). */
cray__blob *cray__blob_husk(const cray__blob *b);
/* The reverse: a blob with the husk's header and refs (moved) and room for its len bytes,
 * to be filled from disk; then free the husk with free_shell. */
cray__blob *cray__blob_unhusk(struct cray__store *s, const cray__blob *husk);
/* Frees b's memory and nothing else: its refs belong to someone else now. */
void cray__blob_free_shell(struct cray__store *s, cray__blob *b);
/* Makes b an orphan and drops one of the store's references (an entry's) to it, freeing
 * it when that was the last. */
void cray__blob_orphan(cray__blob *b);

/* A blob of one MessagePack value copied from data[0..len), bytes from outside the
 * process: checks that they hold exactly one well-formed value, and looks up the object
 * of every ObjectRef inside (ext payloads included). Never CRAY__BLOB_TRUSTED.
 * 0, CRAY_EBADBLOB, CRAY_ENOTFOUND (a ref to no object) or CRAY_ENOMEM. */
int cray__blob_parse(struct cray__store *s, const uint8_t *data, size_t len, cray__blob **out);
/* cray__blob_parse for any number of values back to back: exactly *count of them, or
 * with *count UINT32_MAX as many as there are (then *count is set to how many). */
int cray__blob_parse_values(struct cray__store *s, const uint8_t *data, size_t len,
                            uint32_t *count, cray__blob **out);

#endif
