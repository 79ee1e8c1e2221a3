/*
 * id.c: see id.h.
 */
#include "id.h"

#include <stdio.h>
#include <sys/random.h>
#include <time.h>

#define ID_BLOCK 4096

static _Atomic unsigned id_epochs;

static _Thread_local struct {
  const cray__idgen *gen;
  unsigned epoch;
  uint64_t next, end;
} id_cache;

void cray__id_init(cray__idgen *g) {
  uint64_t nonce = 0;
  if (getrandom(&nonce, sizeof nonce, 0) != (ssize_t)sizeof nonce) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    nonce = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec;
  }
  g->nonce = nonce;
  atomic_init(&g->next_block, 1);
  /* relaxed: only uniqueness matters; nothing else is published with the number */
  g->epoch = atomic_fetch_add_explicit(&id_epochs, 1, memory_order_relaxed) + 1;
}

cray_id cray__id_new(cray__idgen *g) {
  if (id_cache.gen != g || id_cache.epoch != g->epoch || id_cache.next == id_cache.end) {
    uint64_t block = atomic_fetch_add_explicit(&g->next_block, 1, memory_order_relaxed);
    id_cache.gen = g;
    id_cache.epoch = g->epoch;
    id_cache.next = block * ID_BLOCK;
    id_cache.end = id_cache.next + ID_BLOCK;
  }
  cray_id id = {g->nonce, id_cache.next++ << CRAY__ID_INDEX_BITS};
  return id;
}

void cray__id_store(const cray_id *id, uint8_t out[16]) {
  for (int i = 0; i < 8; i++) {
    out[i] = (uint8_t)(id->hi >> (56 - 8 * i));
    out[8 + i] = (uint8_t)(id->lo >> (56 - 8 * i));
  }
}

cray_id cray__id_load(const uint8_t in[16]) {
  cray_id id = {0, 0};
  for (int i = 0; i < 8; i++) {
    id.hi = id.hi << 8 | in[i];
    id.lo = id.lo << 8 | in[8 + i];
  }
  return id;
}

void cray_id_format(const cray_id *id, char buf[33]) {
  if (!id || !buf) return;
  snprintf(buf, 33, "%016llx%016llx", (unsigned long long)id->hi, (unsigned long long)id->lo);
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int cray_id_parse(const char *hex, cray_id *id) {
  if (!hex || !id) return CRAY_EINVAL;
  uint64_t half[2] = {0, 0};
  for (int i = 0; i < 32; i++) {
    int d = hex_digit(hex[i]); /* a NUL ends the loop here: -1 */
    if (d < 0) return CRAY_EINVAL;
    half[i / 16] = half[i / 16] << 4 | (uint64_t)d;
  }
  if (hex[32]) return CRAY_EINVAL;
  id->hi = half[0];
  id->lo = half[1];
  return 0;
}
