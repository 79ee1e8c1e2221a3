/*
 * put.c (fuzz target): a program's sequence of cray_put, cray_get and cray_release of
 * random bytes, against a store so small that it spills to disk and reads back.
 *
 * Input: a list of operations. A byte 0..127 puts: the next two bytes (big-endian)
 * times that byte's low 7 bits plus one give the payload's size (up to ~1 MiB), its bytes
 * taken from the input, repeated; 128..191 gets object (byte & 63) % live; 192..255
 * releases it. Payloads travel as MessagePack bin values. Promises: every put of a
 * well-formed value succeeds (CRAY_ENOMEM only when memory and the spill space are both
 * full, never here) and every get returns exactly the bytes put, spilled or not; at the
 * end every object is released and the store settles back to the two fixed objects.
 */
#include <string.h>
#include <time.h>

#include "../../runtime/cray.h"
#include "fuzz.h"
#include "objects.h"

#define LIVE 16
#define MEMORY (256 << 10)

static cray_runtime *rt;

typedef struct live {
  cray_id id;
  uint8_t *bytes; /* the blob put */
  size_t len;
} live;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  rt = fuzz_runtime(MEMORY);
  return 0;
}

/* A bin value of n bytes, its payload src[0..m) repeated. */
static uint8_t *bin(const uint8_t *src, size_t m, size_t n, size_t *len) {
  size_t head = n <= 0xff ? 2 : n <= 0xffff ? 3 : 5;
  uint8_t *b = malloc(head + n);
  FUZZ_CHECK(b != NULL);
  if (head == 2) b[0] = 0xc4, b[1] = (uint8_t)n;
  else if (head == 3) b[0] = 0xc5, b[1] = (uint8_t)(n >> 8), b[2] = (uint8_t)n;
  else b[0] = 0xc6, b[1] = (uint8_t)(n >> 24), b[2] = (uint8_t)(n >> 16),
       b[3] = (uint8_t)(n >> 8), b[4] = (uint8_t)n;
  for (size_t i = 0; i < n; i++) b[head + i] = m ? src[i % m] : (uint8_t)i;
  *len = head + n;
  return b;
}

static void get(const live *o) {
  cray_view v;
  FUZZ_CHECK(cray_get(rt, &o->id, 0, &v) == 0);
  FUZZ_CHECK(v.count == 1 && v.len == o->len && memcmp(v.data, o->bytes, o->len) == 0);
  cray_view_release(rt, &v);
}

static void drop(live *o) {
  FUZZ_CHECK(cray_release(rt, &o->id) == 0);
  free(o->bytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  live objs[LIVE];
  int n = 0;
  size_t i = 0;
  while (i < size) {
    uint8_t op = data[i++];
    if (op < 128) {
      if (i + 2 > size) break;
      size_t len = ((size_t)data[i] << 8 | data[i + 1]) * ((op & 127) + 1) % (1 << 20);
      i += 2;
      if (n == LIVE) drop(&objs[--n]);
      live *o = &objs[n];
      o->bytes = bin(data + i, size - i, len, &o->len);
      int rc = cray_put(rt, o->bytes, o->len, &o->id);
      FUZZ_CHECK(rc == 0);
      n++;
    } else if (n > 0) {
      live *o = &objs[(op & 63) % n];
      get(o);
      if (op >= 192) {
        drop(o);
        *o = objs[--n];
      }
    }
  }
  for (int k = 0; k < n; k++) get(&objs[k]), drop(&objs[k]);
  /* The spill thread holds a reference to the objects of the batch it is writing, for as
   * long as it writes: the count settles once it is done. */
  cray_store_stats st;
  for (int tries = 0; tries < 10000; tries++) {
    cray_store_stats_get(rt, &st);
    if (st.objects == FUZZ_NOBJECTS) break;
    nanosleep(&(struct timespec){0, 1000000}, NULL);
  }
  FUZZ_CHECK(st.objects == FUZZ_NOBJECTS);
  return 0;
}
