/*
 * id.h: 128-bit object ids.
 *
 * hi is a random nonce drawn when the runtime opens; in a cluster (cluster.h) it is the
 * job's nonce shifted left 16 bits with the rank that made the id in the low 16, so an
 * id names its owner. lo is (sequence << 16 | index).
 * Sequences come from a runtime-wide counter in blocks claimed per thread, so making an id
 * touches no shared cache line on the fast path. Index 0 names a put object or a task;
 * index i >= 1 names the i-th return of the task whose id has index 0, so a task's return
 * ids are known the moment it is submitted.
 */
#ifndef CRAY_ID_H
#define CRAY_ID_H

#include <stdatomic.h>
#include <stdint.h>

#include "cray.h"

#define CRAY__ID_INDEX_BITS 16
#define CRAY__ID_MAX_INDEX ((1u << CRAY__ID_INDEX_BITS) - 1)

typedef struct cray__idgen {
  uint64_t nonce;
  _Atomic uint64_t next_block;
  unsigned epoch; /* distinguishes runtimes opened one after another */
} cray__idgen;

void cray__id_init(cray__idgen *g);
/* A fresh id with index 0. */
cray_id cray__id_new(cray__idgen *g);

static inline cray_id cray__id_with_index(cray_id base, unsigned index) {
  cray_id id = {base.hi, (base.lo & ~(uint64_t)CRAY__ID_MAX_INDEX) | index};
  return id;
}

#define CRAY__ID_RANK_BITS 16

/* The rank that made id, in a cluster. */
static inline int cray__id_owner(const cray_id *id) {
  return (int)(id->hi & ((1u << CRAY__ID_RANK_BITS) - 1));
}

static inline int cray__id_eq(const cray_id *a, const cray_id *b) {
  return a->hi == b->hi && a->lo == b->lo;
}

static inline uint64_t cray__id_hash(const cray_id *id) {
  uint64_t h = id->lo * 0x9E3779B97F4A7C15ull ^ id->hi;
  return h ^ (h >> 29);
}

/* Big-endian 16-byte form, as ids travel inside blobs. */
void cray__id_store(const cray_id *id, uint8_t out[16]);
cray_id cray__id_load(const uint8_t in[16]);

#endif
