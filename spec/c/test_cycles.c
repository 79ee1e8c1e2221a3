/*
 * test_cycles.c: 100 open/work/close cycles in one process, each using every part of the
 * C API (put, get, a Lua function, a C function, an actor, an error object, a Lua
 * driver). Run plainly it proves the cycles work; spec/run also runs it under valgrind
 * (when installed), where any leak or memory error fails it.
 */
#include <stdlib.h>
#include <string.h>

#include "../../runtime/cray.h"
#include "check.h"

#define CYCLES 100

/* c.twice(n) -> 2n, for small non-negative n */
static int c_twice(void *ud, const uint8_t *args, size_t len, cray_buffer *out) {
  (void)ud;
  if (len != 2 || args[0] != 0x91 || args[1] > 0x3f) return CRAY_EINVAL;
  uint8_t r = (uint8_t)(args[1] * 2);
  return cray_buffer_append(out, &r, 1);
}

/* The first byte of the object's value (a positive fixint), or -1. */
static int first_byte(cray_runtime *rt, const cray_id *id) {
  cray_view v;
  int rc = cray_get(rt, id, 30, &v), b = -1;
  if (rc == 0 && v.len >= 1) b = v.data[0];
  if (rc == 0 || rc == CRAY_EOBJERROR) cray_view_release(rt, &v);
  cray_release(rt, id);
  return rc == 0 ? b : -1;
}

static int cycle(void) {
  cray_options o;
  cray_options_init(&o);
  o.workers = 1;
  o.memory = 16 << 20;
  o.spill_max = 64 << 20; /* a small LMDB map: valgrind refuses one the size of the disk */
  cray_runtime *rt;
  if (cray_open(&rt, &o) != 0) return 0;
  int ok = cray_register(rt, "twice", c_twice, NULL) == 0;
  static const uint8_t seven[] = {0x07}, args[] = {0x92, 0x02, 0x03}, one[] = {0x91, 0x05};
  cray_id id, r, a;
  ok &= cray_put(rt, seven, 1, &id) == 0 && first_byte(rt, &id) == 7;
  ok &= cray_call(rt, "spec.fixtures.capi.add", args, 3, &r) == 0 && first_byte(rt, &r) == 5;
  ok &= cray_call(rt, "c.twice", one, 2, &r) == 0 && first_byte(rt, &r) == 10;
  ok &= cray_actor_create(rt, "spec.fixtures.capi.Counter", one, 2, &a) == 0;
  ok &= cray_actor_call(rt, &a, "incr", one, 2, &r) == 0 && first_byte(rt, &r) == 10;
  ok &= cray_release(rt, &a) == 0;
  static const uint8_t fail[] = {0x91, 0xa1, 'x'};
  cray_view v;
  cray_error e;
  ok &= cray_call(rt, "spec.fixtures.capi.fail", fail, 3, &r) == 0;
  ok &= cray_get(rt, &r, 30, &v) == CRAY_EOBJERROR && cray_error_info(&v, &e) == 0 &&
        strcmp(e.message, "x") == 0;
  cray_view_release(rt, &v);
  cray_release(rt, &r);
  char *err = NULL;
  ok &= cray_run_string(rt, "assert(cray.get(cray.remote('c.twice').remote(4)) == 8)", "=cycle",
                        &err) == 0;
  if (err) fprintf(stderr, "%s\n", err);
  free(err);
  cray_close(rt);
  return ok;
}

int main(void) {
  int good = 0;
  for (int i = 0; i < CYCLES; i++) good += cycle();
  CHECK_EQ(good, CYCLES);
  return check_done();
}
