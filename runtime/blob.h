/*
 * blob.h: immutable, reference-counted byte blobs, the form every stored value takes.
 *
 * A blob holds `count` MessagePack values back to back (a task's returns, or one put
 * value) and the entries of the ObjectRefs nested inside them, in the order they occur,
 * each holding one store reference for as long as the blob lives. Header, ref table and
 * bytes share one allocation. A blob never changes after cray__blob_new returns, so any
 * thread may read it while it holds a reference.
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
};

typedef struct cray__blob {
  _Atomic uint32_t rc;
  uint32_t count; /* top-level values */
  uint32_t nrefs; /* nested ObjectRefs */
  uint32_t flags;
  size_t len;
  struct cray__entry **refs; /* nrefs entries, one reference each */
  uint8_t *data;             /* len bytes, 16-byte aligned */
} cray__blob;

/* A new blob with rc 1 holding a copy of data[0..len); takes a reference on each of
 * refs[0..nrefs). NULL when memory is short (nothing is taken then). */
cray__blob *cray__blob_new(const uint8_t *data, size_t len, uint32_t count,
                           struct cray__entry *const *refs, uint32_t nrefs, uint32_t flags);

static inline void cray__blob_retain(cray__blob *b) {
  atomic_fetch_add_explicit(&b->rc, 1, memory_order_relaxed);
}

/* Drops one reference; the last one frees the blob and releases its nested refs. */
void cray__blob_release(struct cray__store *s, cray__blob *b);

/* A blob of one MessagePack value copied from data[0..len), bytes from outside the
 * process: checks that they hold exactly one well-formed value, and looks up the object
 * of every ObjectRef inside (ext payloads included). Never CRAY__BLOB_TRUSTED.
 * 0, CRAY_EBADBLOB, CRAY_ENOTFOUND (a ref to no object) or CRAY_ENOMEM. */
int cray__blob_parse(struct cray__store *s, const uint8_t *data, size_t len, cray__blob **out);

#endif
