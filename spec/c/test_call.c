/*
 * test_call.c: the C API's tasks and actors (cray_call, cray_actor_create,
 * cray_actor_call), C functions as tasks (cray_register, cray_buffer_append), error objects
 * read from C (cray_error_info), ids as hex, options and versions, a worker's busy time
 * across work it runs nested in a C function's wait, and every bad input's code. Lua functions and classes come from spec/fixtures/capi.lua.
 */
#include <msgpack.h>
#include <stddef.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../runtime/cray.h"
#include "check.h"

#define FIX "spec.fixtures.capi."

/* ---- MessagePack helpers ---- */

typedef struct pack {
  msgpack_sbuffer sb;
  msgpack_packer pk;
} pack;

static void pack_init(pack *p) {
  msgpack_sbuffer_init(&p->sb);
  msgpack_packer_init(&p->pk, &p->sb, msgpack_sbuffer_write);
}

/* A MessagePack array of n integers. */
static void pack_ints(pack *p, int n, const long long *v) {
  pack_init(p);
  msgpack_pack_array(&p->pk, (size_t)n);
  for (int i = 0; i < n; i++) msgpack_pack_int64(&p->pk, v[i]);
}

static void pack_ref(msgpack_packer *pk, const cray_id *id) {
  uint8_t b[16];
  for (int i = 0; i < 8; i++) {
    b[i] = (uint8_t)(id->hi >> (56 - 8 * i));
    b[8 + i] = (uint8_t)(id->lo >> (56 - 8 * i));
  }
  msgpack_pack_ext(pk, 16, 1);
  msgpack_pack_ext_body(pk, b, 16);
}

/* The integer values of the object id (all of them, up to max), or -1 when it failed. */
static int get_ints(cray_runtime *rt, const cray_id *id, long long *out, int max) {
  cray_view v;
  int rc = cray_get(rt, id, 30, &v);
  if (rc != 0) {
    if (rc == CRAY_EOBJERROR) {
      cray_error e;
      if (cray_error_info(&v, &e) == 0) fprintf(stderr, "  (error: %s: %s)\n", e.kind, e.message);
      cray_view_release(rt, &v);
    }
    return -1;
  }
  size_t off = 0;
  int n = 0;
  msgpack_unpacked up;
  msgpack_unpacked_init(&up);
  while (n < max &&
         msgpack_unpack_next(&up, (const char *)v.data, v.len, &off) == MSGPACK_UNPACK_SUCCESS)
    out[n++] = up.data.via.i64;
  msgpack_unpacked_destroy(&up);
  if ((uint32_t)n != v.count) n = -1; /* no CHECK here: threads call it */
  cray_view_release(rt, &v);
  return n;
}

/* Calls fn with integer arguments and returns its first result (or -999 when it failed). */
static long long call_int(cray_runtime *rt, const char *fn, int n, const long long *args) {
  pack p;
  pack_ints(&p, n, args);
  cray_id r;
  long long out[4] = {-999};
  int rc = cray_call(rt, fn, p.sb.data, p.sb.size, &r);
  CHECK_EQ(rc, 0);
  msgpack_sbuffer_destroy(&p.sb);
  if (rc) return -999;
  if (get_ints(rt, &r, out, 4) < 1) out[0] = -999;
  CHECK_EQ(cray_release(rt, &r), 0);
  return out[0];
}

/* Reads the error that object id holds into *e (its view in *v, to release). */
static int get_error(cray_runtime *rt, const cray_id *id, cray_view *v, cray_error *e) {
  int rc = cray_get(rt, id, 30, v);
  CHECK_EQ(rc, CRAY_EOBJERROR);
  if (rc != CRAY_EOBJERROR) {
    if (rc == 0) cray_view_release(rt, v);
    return -1;
  }
  rc = cray_error_info(v, e);
  CHECK_EQ(rc, 0);
  return rc;
}

static int contains(const char *s, const char *what) { return s && strstr(s, what) != NULL; }

/* ---- Lua functions ---- */

static void test_call_lua_function(void) {
  cray_runtime *rt = check_open(2, 64 << 20);
  CHECK_EQ(call_int(rt, FIX "add", 2, (long long[]){2, 3}), 5);

  /* every value the function returns, in one object */
  pack p;
  pack_ints(&p, 2, (long long[]){17, 5});
  cray_id r;
  CHECK_EQ(cray_call(rt, FIX "divmod", p.sb.data, p.sb.size, &r), 0);
  long long out[4];
  CHECK_EQ(get_ints(rt, &r, out, 4), 2);
  CHECK_EQ(out[0], 3);
  CHECK_EQ(out[1], 2);
  CHECK_EQ(cray_release(rt, &r), 0);
  msgpack_sbuffer_destroy(&p.sb);

  /* a ref at the top level stands for its value; nested, it stays a ref */
  pack_ints(&p, 0, NULL);
  msgpack_sbuffer_clear(&p.sb);
  msgpack_pack_int64(&p.pk, 40);
  cray_id forty;
  CHECK_EQ(cray_put(rt, p.sb.data, p.sb.size, &forty), 0);
  msgpack_sbuffer_clear(&p.sb);
  msgpack_pack_array(&p.pk, 2);
  pack_ref(&p.pk, &forty);
  msgpack_pack_int64(&p.pk, 2);
  CHECK_EQ(cray_call(rt, FIX "add", p.sb.data, p.sb.size, &r), 0);
  CHECK_EQ(get_ints(rt, &r, out, 4), 1);
  CHECK_EQ(out[0], 42);
  CHECK_EQ(cray_release(rt, &r), 0);
  msgpack_sbuffer_clear(&p.sb);
  msgpack_pack_array(&p.pk, 3);
  pack_ref(&p.pk, &forty);
  msgpack_pack_array(&p.pk, 1);
  pack_ref(&p.pk, &forty);
  msgpack_pack_str_with_body(&p.pk, "s", 1);
  CHECK_EQ(cray_call(rt, FIX "types", p.sb.data, p.sb.size, &r), 0);
  cray_view v;
  CHECK_EQ(cray_get(rt, &r, 30, &v), 0);
  CHECK(v.len > 1 && memmem(v.data, v.len, "number,table,string", 19) != NULL);
  cray_view_release(rt, &v);
  CHECK_EQ(cray_release(rt, &r), 0);
  CHECK_EQ(cray_release(rt, &forty), 0);
  msgpack_sbuffer_destroy(&p.sb);
  cray_close(rt);
}

static void test_call_errors(void) {
  cray_runtime *rt = check_open(2, 64 << 20);
  pack p;
  pack_init(&p);
  msgpack_pack_array(&p.pk, 1);
  msgpack_pack_str_with_body(&p.pk, "boom", 4);
  cray_id bad, r;
  CHECK_EQ(cray_call(rt, FIX "fail", p.sb.data, p.sb.size, &bad), 0);
  cray_view v;
  cray_error e;
  if (get_error(rt, &bad, &v, &e) == 0) {
    CHECK(strcmp(e.kind, "task_error") == 0);
    CHECK(strcmp(e.message, "boom") == 0);
    CHECK(contains(e.task, "fail"));
    CHECK(e.traceback != NULL);
    CHECK(e.cause_kind == NULL);
    cray_view_release(rt, &v);
  }

  /* a failed argument fails the task; the cause is the argument's error */
  msgpack_sbuffer_clear(&p.sb);
  msgpack_pack_array(&p.pk, 2);
  pack_ref(&p.pk, &bad);
  msgpack_pack_int64(&p.pk, 1);
  CHECK_EQ(cray_call(rt, FIX "add", p.sb.data, p.sb.size, &r), 0);
  if (get_error(rt, &r, &v, &e) == 0) {
    CHECK(strcmp(e.kind, "task_error") == 0);
    CHECK(contains(e.message, "argument 1 failed"));
    CHECK(e.cause_kind && strcmp(e.cause_kind, "task_error") == 0);
    cray_view_release(rt, &v);
  }
  CHECK_EQ(cray_release(rt, &r), 0);
  CHECK_EQ(cray_release(rt, &bad), 0);

  /* a Lua function that does not exist */
  msgpack_sbuffer_clear(&p.sb);
  msgpack_pack_array(&p.pk, 0);
  CHECK_EQ(cray_call(rt, FIX "nope", p.sb.data, p.sb.size, &r), 0);
  if (get_error(rt, &r, &v, &e) == 0) {
    CHECK(contains(e.message, "no function 'nope'"));
    cray_view_release(rt, &v);
  }
  CHECK_EQ(cray_release(rt, &r), 0);
  CHECK_EQ(cray_call(rt, "no_such_module.fn", p.sb.data, p.sb.size, &r), 0);
  if (get_error(rt, &r, &v, &e) == 0) {
    CHECK(contains(e.message, "no_such_module"));
    cray_view_release(rt, &v);
  }
  CHECK_EQ(cray_release(rt, &r), 0);

  /* trust: a Lua function inside arguments from C is never loaded */
  msgpack_sbuffer_clear(&p.sb);
  msgpack_pack_array(&p.pk, 1);
  msgpack_pack_ext(&p.pk, 5, 4);
  msgpack_pack_ext_body(&p.pk, "\x92\xc4\x01\x00\x90", 5); /* [bin "\0", []] */
  CHECK_EQ(cray_call(rt, FIX "types", p.sb.data, p.sb.size, &r), 0);
  if (get_error(rt, &r, &v, &e) == 0) {
    CHECK(contains(e.message, "refusing to load Lua bytecode from an untrusted blob"));
    CHECK(e.cause_kind && strcmp(e.cause_kind, "serialization") == 0);
    cray_view_release(rt, &v);
  }
  CHECK_EQ(cray_release(rt, &r), 0);
  msgpack_sbuffer_destroy(&p.sb);
  cray_close(rt);
}

/* ---- actors ---- */

static void test_actors(void) {
  cray_runtime *rt = check_open(2, 64 << 20);
  pack p;
  pack_ints(&p, 1, (long long[]){10});
  cray_id a, r;
  CHECK_EQ(cray_actor_create(rt, FIX "Counter", p.sb.data, p.sb.size, &a), 0);
  msgpack_sbuffer_destroy(&p.sb);
  /* calls from one thread run in the order sent */
  cray_id rs[50];
  for (int i = 0; i < 50; i++) {
    pack_ints(&p, 1, (long long[]){i + 1});
    CHECK_EQ(cray_actor_call(rt, &a, "incr", p.sb.data, p.sb.size, &rs[i]), 0);
    msgpack_sbuffer_destroy(&p.sb);
  }
  long long out[2], want = 10;
  int in_order = 1;
  for (int i = 0; i < 50; i++) {
    want += i + 1;
    in_order &= get_ints(rt, &rs[i], out, 2) == 1 && out[0] == want;
    CHECK_EQ(cray_release(rt, &rs[i]), 0);
  }
  CHECK(in_order);
  pack_ints(&p, 0, NULL);
  CHECK_EQ(cray_actor_call(rt, &a, "get", p.sb.data, p.sb.size, &r), 0);
  CHECK_EQ(get_ints(rt, &r, out, 2), 1);
  CHECK_EQ(out[0], 10 + 50 * 51 / 2);
  CHECK_EQ(cray_release(rt, &r), 0);

  /* a method that does not exist fails its call only */
  cray_view v;
  cray_error e;
  CHECK_EQ(cray_actor_call(rt, &a, "nope", p.sb.data, p.sb.size, &r), 0);
  if (get_error(rt, &r, &v, &e) == 0) {
    CHECK(strcmp(e.kind, "task_error") == 0);
    CHECK(contains(e.message, "no method 'nope'"));
    cray_view_release(rt, &v);
  }
  CHECK_EQ(cray_release(rt, &r), 0);
  CHECK_EQ(cray_release(rt, &a), 0);

  /* a class that does not exist: the actor dies, its calls say why */
  CHECK_EQ(cray_actor_create(rt, FIX "Nope", p.sb.data, p.sb.size, &a), 0);
  CHECK_EQ(cray_actor_call(rt, &a, "get", p.sb.data, p.sb.size, &r), 0);
  if (get_error(rt, &r, &v, &e) == 0) {
    CHECK(strcmp(e.kind, "actor_died") == 0);
    CHECK(e.cause_kind != NULL);
    cray_view_release(rt, &v);
  }
  CHECK_EQ(cray_release(rt, &r), 0);
  CHECK_EQ(cray_release(rt, &a), 0);
  msgpack_sbuffer_destroy(&p.sb);
  cray_close(rt);
}

/* ---- C functions ---- */

/* c.sum(ints...) -> their sum */
static int c_sum(void *ud, const uint8_t *args, size_t len, cray_buffer *out) {
  (void)ud;
  msgpack_unpacked up;
  msgpack_unpacked_init(&up);
  size_t off = 0;
  long long sum = 0;
  if (msgpack_unpack_next(&up, (const char *)args, len, &off) == MSGPACK_UNPACK_SUCCESS &&
      up.data.type == MSGPACK_OBJECT_ARRAY)
    for (uint32_t i = 0; i < up.data.via.array.size; i++) sum += up.data.via.array.ptr[i].via.i64;
  msgpack_unpacked_destroy(&up);
  pack p;
  pack_init(&p);
  msgpack_pack_int64(&p.pk, sum);
  int rc = cray_buffer_append(out, p.sb.data, p.sb.size);
  msgpack_sbuffer_destroy(&p.sb);
  return rc;
}

/* c.pair() -> 1, 2 (two values in two appends) */
static int c_pair(void *ud, const uint8_t *args, size_t len, cray_buffer *out) {
  (void)ud, (void)args, (void)len;
  return cray_buffer_append(out, "\x01", 1) || cray_buffer_append(out, "\x02", 1);
}

/* c.code(n) -> fails with code n */
static int c_code(void *ud, const uint8_t *args, size_t len, cray_buffer *out) {
  (void)ud, (void)out;
  msgpack_unpacked up;
  msgpack_unpacked_init(&up);
  size_t off = 0;
  int code = 0;
  if (msgpack_unpack_next(&up, (const char *)args, len, &off) == MSGPACK_UNPACK_SUCCESS)
    code = (int)up.data.via.array.ptr[0].via.i64;
  msgpack_unpacked_destroy(&up);
  return code;
}

/* c.garbage() -> appends bytes that are not MessagePack */
static int c_garbage(void *ud, const uint8_t *args, size_t len, cray_buffer *out) {
  (void)ud, (void)args, (void)len;
  return cray_buffer_append(out, "\x92\x01", 2);
}

/* c.fib(n): calls itself through cray_call and waits with cray_get, inside the task; also
 * puts and reads an object. Runs on one worker without deadlocking. */
static int c_fib(void *ud, const uint8_t *args, size_t len, cray_buffer *out) {
  cray_runtime *rt = ud;
  msgpack_unpacked up;
  msgpack_unpacked_init(&up);
  size_t off = 0;
  long long n = 0;
  if (msgpack_unpack_next(&up, (const char *)args, len, &off) == MSGPACK_UNPACK_SUCCESS)
    n = up.data.via.array.ptr[0].via.i64;
  msgpack_unpacked_destroy(&up);
  long long result = n;
  if (n >= 2) {
    cray_id r[2];
    long long v[2];
    for (int i = 0; i < 2; i++) {
      pack p;
      pack_ints(&p, 1, (long long[]){n - 1 - i});
      int rc = cray_call(rt, "c.fib", p.sb.data, p.sb.size, &r[i]);
      msgpack_sbuffer_destroy(&p.sb);
      if (rc) return rc;
    }
    for (int i = 0; i < 2; i++) {
      cray_view view;
      int rc = cray_get(rt, &r[i], 60, &view);
      if (rc == 0) {
        msgpack_unpacked_init(&up);
        off = 0;
        msgpack_unpack_next(&up, (const char *)view.data, view.len, &off);
        v[i] = up.data.via.i64;
        msgpack_unpacked_destroy(&up);
        cray_view_release(rt, &view);
      }
      cray_release(rt, &r[i]);
      if (rc) return rc;
    }
    result = v[0] + v[1];
  }
  pack p;
  pack_init(&p);
  msgpack_pack_int64(&p.pk, result);
  cray_id kept;
  int rc = cray_put(rt, p.sb.data, p.sb.size, &kept);
  cray_view view;
  if (rc == 0 && (rc = cray_get(rt, &kept, 0, &view)) == 0) {
    rc = cray_buffer_append(out, view.data, view.len);
    cray_view_release(rt, &view);
  }
  if (rc == 0) rc = cray_release(rt, &kept);
  msgpack_sbuffer_destroy(&p.sb);
  return rc;
}

/* c.via_lua(a, b): calls the Lua task slow_add(a, b), which sleeps, and waits for it
 * with a timeout, from inside its own task. */
static int c_via_lua(void *ud, const uint8_t *args, size_t len, cray_buffer *out) {
  cray_runtime *rt = ud;
  cray_id r;
  int rc = cray_call(rt, FIX "slow_add", args, len, &r);
  if (rc) return rc;
  cray_view v;
  if ((rc = cray_get(rt, &r, 60, &v)) == 0) {
    rc = cray_buffer_append(out, v.data, v.len);
    cray_view_release(rt, &v);
  }
  cray_release(rt, &r);
  return rc;
}

/* Spins for ms milliseconds of the monotonic clock: busy, not waiting. */
static void spin_ms(long long ms) {
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  do clock_gettime(CLOCK_MONOTONIC, &b);
  while ((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < ms);
}

static int c_spin(void *ud, const uint8_t *args, size_t len, cray_buffer *out) {
  (void)ud, (void)args, (void)len, (void)out;
  spin_ms(50);
  return 0;
}

/* Spins 50 ms, waits for c.spin (which its worker runs meanwhile, nested), spins 50 more. */
static int c_spin_around(void *ud, const uint8_t *args, size_t len, cray_buffer *out) {
  cray_runtime *rt = ud;
  spin_ms(50);
  cray_id r;
  int rc = cray_call(rt, "c.spin", args, len, &r);
  if (rc) return rc;
  cray_view v;
  if ((rc = cray_get(rt, &r, 60, &v)) == 0) cray_view_release(rt, &v);
  cray_release(rt, &r);
  spin_ms(50);
  (void)out;
  return rc;
}

static void register_all(cray_runtime *rt) {
  CHECK_EQ(cray_register(rt, "sum", c_sum, NULL), 0);
  CHECK_EQ(cray_register(rt, "pair", c_pair, NULL), 0);
  CHECK_EQ(cray_register(rt, "code", c_code, NULL), 0);
  CHECK_EQ(cray_register(rt, "garbage", c_garbage, NULL), 0);
  CHECK_EQ(cray_register(rt, "fib", c_fib, rt), 0);
  CHECK_EQ(cray_register(rt, "via_lua", c_via_lua, rt), 0);
  CHECK_EQ(cray_register(rt, "spin", c_spin, NULL), 0);
  CHECK_EQ(cray_register(rt, "spin_around", c_spin_around, rt), 0);
}

/* A worker's busy time counts a task's whole stretch, work it ran nested in a wait of the
 * task's included: 100 ms of the outer function's spin and the 50 ms of the inner one's
 * (counted in both). One worker, so the inner call runs nested. */
static void test_busy_nested(void) {
  cray_runtime *rt = check_open(1, 64 << 20);
  register_all(rt);
  long long before = call_int(rt, FIX "busy_ms", 0, NULL);
  pack p;
  pack_ints(&p, 0, NULL);
  cray_id r;
  CHECK_EQ(cray_call(rt, "c.spin_around", p.sb.data, p.sb.size, &r), 0);
  msgpack_sbuffer_destroy(&p.sb);
  cray_view v;
  CHECK_EQ(cray_get(rt, &r, 60, &v), 0);
  cray_view_release(rt, &v);
  CHECK_EQ(cray_release(rt, &r), 0);
  long long added = call_int(rt, FIX "busy_ms", 0, NULL) - before;
  CHECK(added >= 140);
  if (added < 140) fprintf(stderr, "busy grew by %lld ms\n", added);
  cray_close(rt);
}

static void test_c_functions(void) {
  cray_runtime *rt = check_open(2, 64 << 20);
  register_all(rt);
  CHECK_EQ(call_int(rt, "c.sum", 3, (long long[]){1, 2, 39}), 42);

  pack p;
  pack_ints(&p, 0, NULL);
  cray_id r;
  long long out[4];
  CHECK_EQ(cray_call(rt, "c.pair", p.sb.data, p.sb.size, &r), 0);
  CHECK_EQ(get_ints(rt, &r, out, 4), 2);
  CHECK_EQ(out[0] * 10 + out[1], 12);
  CHECK_EQ(cray_release(rt, &r), 0);

  /* a negative return fails the task with task_error naming the code */
  cray_view v;
  cray_error e;
  msgpack_sbuffer_destroy(&p.sb);
  pack_ints(&p, 1, (long long[]){CRAY_ENOMEM});
  CHECK_EQ(cray_call(rt, "c.code", p.sb.data, p.sb.size, &r), 0);
  if (get_error(rt, &r, &v, &e) == 0) {
    CHECK(strcmp(e.kind, "task_error") == 0);
    CHECK(contains(e.message, "CRAY_ENOMEM"));
    CHECK(contains(e.message, "c.code"));
    cray_view_release(rt, &v);
  }
  CHECK_EQ(cray_release(rt, &r), 0);
  msgpack_sbuffer_destroy(&p.sb);
  pack_ints(&p, 1, (long long[]){-4242});
  CHECK_EQ(cray_call(rt, "c.code", p.sb.data, p.sb.size, &r), 0);
  if (get_error(rt, &r, &v, &e) == 0) {
    CHECK(contains(e.message, "-4242"));
    cray_view_release(rt, &v);
  }
  CHECK_EQ(cray_release(rt, &r), 0);
  msgpack_sbuffer_destroy(&p.sb);

  /* results that are not MessagePack fail the task, saying so */
  pack_ints(&p, 0, NULL);
  CHECK_EQ(cray_call(rt, "c.garbage", p.sb.data, p.sb.size, &r), 0);
  if (get_error(rt, &r, &v, &e) == 0) {
    CHECK(contains(e.message, "malformed MessagePack"));
    cray_view_release(rt, &v);
  }
  CHECK_EQ(cray_release(rt, &r), 0);
  msgpack_sbuffer_destroy(&p.sb);

  /* Lua calls a C function as cray.remote("c.NAME"), with options */
  char *err = NULL;
  int rc = cray_run_string(rt,
                           "local cray = require 'cray'\n"
                           "assert(cray.get(cray.remote('c.sum').remote(1, 2, 3)) == 6)\n"
                           "local a, b = cray.remote('c.pair').options{num_returns = 2}.remote()\n"
                           "assert(cray.get(a) == 1 and cray.get(b) == 2)\n"
                           "local ok, e = pcall(cray.get, cray.remote('c.nope').remote())\n"
                           "assert(not ok and e.kind == 'task_error', tostring(e))\n"
                           "assert(e.message:find(\"no C function is registered as 'c.nope'\"), e.message)\n"
                           "local ok2, e2 = pcall(cray.get, (cray.remote('c.pair').options{num_returns = 3}.remote()))\n"
                           "assert(not ok2 and e2.message:find('fewer values than num_returns'), tostring(e2))\n",
                           "=c_from_lua", &err);
  CHECK_EQ(rc, 0);
  if (err) fprintf(stderr, "%s\n", err);
  free(err);

  /* a Lua task calls a C function and waits for it */
  pack_init(&p);
  msgpack_pack_array(&p.pk, 3);
  msgpack_pack_str_with_body(&p.pk, "sum", 3);
  msgpack_pack_int64(&p.pk, 20);
  msgpack_pack_int64(&p.pk, 22);
  CHECK_EQ(cray_call(rt, FIX "call_c", p.sb.data, p.sb.size, &r), 0);
  CHECK_EQ(get_ints(rt, &r, out, 4), 1);
  CHECK_EQ(out[0], 42);
  CHECK_EQ(cray_release(rt, &r), 0);
  msgpack_sbuffer_destroy(&p.sb);
  cray_close(rt);
}

/* A C function calls back into the runtime (cray_call, cray_get, cray_put) from inside its
 * task, nested many deep, on a single worker. */
static void test_c_callbacks(void) {
  cray_runtime *rt = check_open(1, 64 << 20);
  register_all(rt);
  CHECK_EQ(call_int(rt, "c.fib", 1, (long long[]){5}), 5);
  CHECK_EQ(call_int(rt, "c.fib", 1, (long long[]){12}), 144);
  /* the Lua task it waits for suspends on this same worker and is resumed there */
  CHECK_EQ(call_int(rt, "c.via_lua", 2, (long long[]){40, 2}), 42);
  cray_close(rt);
}

/* ---- bad input ---- */

static void test_bad_input(void) {
  cray_runtime *rt = check_open(1, 64 << 20);
  register_all(rt);
  static const uint8_t empty[] = {0x90}, one[] = {0x91, 0x01};
  cray_id r, id;

  /* NULLs */
  CHECK_EQ(cray_call(NULL, "c.sum", empty, 1, &r), CRAY_EINVAL);
  CHECK_EQ(cray_call(rt, NULL, empty, 1, &r), CRAY_EINVAL);
  CHECK_EQ(cray_call(rt, "c.sum", NULL, 1, &r), CRAY_EINVAL);
  CHECK_EQ(cray_call(rt, "c.sum", empty, 1, NULL), CRAY_EINVAL);
  CHECK_EQ(cray_actor_create(NULL, FIX "Counter", empty, 1, &r), CRAY_EINVAL);
  CHECK_EQ(cray_actor_create(rt, NULL, empty, 1, &r), CRAY_EINVAL);
  CHECK_EQ(cray_actor_create(rt, FIX "Counter", NULL, 1, &r), CRAY_EINVAL);
  CHECK_EQ(cray_actor_create(rt, FIX "Counter", empty, 1, NULL), CRAY_EINVAL);
  CHECK_EQ(cray_actor_call(rt, NULL, "get", empty, 1, &r), CRAY_EINVAL);
  CHECK_EQ(cray_register(NULL, "x", c_sum, NULL), CRAY_EINVAL);
  CHECK_EQ(cray_register(rt, NULL, c_sum, NULL), CRAY_EINVAL);
  CHECK_EQ(cray_register(rt, "x", NULL, NULL), CRAY_EINVAL);
  CHECK_EQ(cray_buffer_append(NULL, "x", 1), CRAY_EINVAL);
  CHECK_EQ(cray_error_info(NULL, NULL), CRAY_EINVAL);
  CHECK_EQ(cray_id_parse(NULL, &id), CRAY_EINVAL);

  /* names */
  CHECK_EQ(cray_call(rt, "nodot", empty, 1, &r), CRAY_EINVAL);
  CHECK_EQ(cray_call(rt, "mod.", empty, 1, &r), CRAY_EINVAL);
  CHECK_EQ(cray_call(rt, ".fn", empty, 1, &r), CRAY_EINVAL);
  CHECK_EQ(cray_call(rt, "mod.f n", empty, 1, &r), CRAY_EINVAL);
  CHECK_EQ(cray_call(rt, "c.unregistered", empty, 1, &r), CRAY_ENOTFOUND);
  CHECK_EQ(cray_actor_create(rt, "NoDot", empty, 1, &r), CRAY_EINVAL);
  CHECK_EQ(cray_register(rt, "", c_sum, NULL), CRAY_EINVAL);
  CHECK_EQ(cray_register(rt, "a.b", c_sum, NULL), CRAY_EINVAL);

  /* malformed MessagePack: not an array, truncated, trailing bytes, short array */
  CHECK_EQ(cray_call(rt, "c.sum", one + 1, 1, &r), CRAY_EBADBLOB);
  CHECK_EQ(cray_call(rt, "c.sum", one, 1, &r), CRAY_EBADBLOB);
  CHECK_EQ(cray_call(rt, "c.sum", one, 0, &r), CRAY_EBADBLOB);
  CHECK_EQ(cray_call(rt, "c.sum", (const uint8_t[]){0x91, 0x01, 0x02}, 3, &r), CRAY_EBADBLOB);
  CHECK_EQ(cray_call(rt, "c.sum", (const uint8_t[]){0x92, 0x01}, 2, &r), CRAY_EBADBLOB);
  CHECK_EQ(cray_call(rt, "c.sum", (const uint8_t[]){0x90, 0x01}, 2, &r), CRAY_EBADBLOB);
  CHECK_EQ(cray_call(rt, "c.sum", (const uint8_t[]){0x91, 0xc1}, 2, &r), CRAY_EBADBLOB);

  /* a ref to no object; an actor id that names nothing, or no actor */
  pack p;
  pack_init(&p);
  msgpack_pack_array(&p.pk, 1);
  cray_id nobody = {1, 2};
  pack_ref(&p.pk, &nobody);
  CHECK_EQ(cray_call(rt, "c.sum", p.sb.data, p.sb.size, &r), CRAY_ENOTFOUND);
  CHECK_EQ(cray_actor_call(rt, &nobody, "get", empty, 1, &r), CRAY_ENOTFOUND);
  msgpack_sbuffer_destroy(&p.sb);
  CHECK_EQ(cray_put(rt, one + 1, 1, &id), 0);
  CHECK_EQ(cray_actor_call(rt, &id, "get", empty, 1, &r), CRAY_EINVAL);
  CHECK_EQ(cray_actor_call(rt, &id, "", empty, 1, &r), CRAY_EINVAL);

  /* a view that is not an error */
  cray_view v;
  cray_error e;
  CHECK_EQ(cray_get(rt, &id, 1, &v), 0);
  CHECK_EQ(cray_error_info(&v, &e), CRAY_EINVAL);
  cray_view_release(rt, &v);
  CHECK_EQ(cray_error_info(&v, &e), CRAY_EINVAL); /* released */
  CHECK_EQ(cray_release(rt, &id), 0);

  /* nothing was made by the refused calls: only the objects of names and functions */
  cray_store_stats st;
  cray_store_stats_get(rt, &st);
  CHECK(st.objects <= 2);
  cray_close(rt);
}

/* ---- ids, versions, options ---- */

static void test_ids_versions_options(void) {
  cray_id id = {0x0123456789abcdefull, 0xfedcba9876543210ull}, back;
  char hex[33];
  cray_id_format(&id, hex);
  CHECK_EQ(cray_id_parse(hex, &back), 0);
  CHECK(back.hi == id.hi && back.lo == id.lo);
  CHECK_EQ(cray_id_parse("0123456789ABCDEFFEDCBA9876543210", &back), 0);
  CHECK(back.hi == id.hi && back.lo == id.lo);
  CHECK_EQ(cray_id_parse("0123456789abcdeffedcba987654321", &back), CRAY_EINVAL);
  CHECK_EQ(cray_id_parse("0123456789abcdeffedcba98765432100", &back), CRAY_EINVAL);
  CHECK_EQ(cray_id_parse("0123456789abcdeffedcba987654321g", &back), CRAY_EINVAL);
  CHECK_EQ(cray_id_parse("", &back), CRAY_EINVAL);
  CHECK_EQ(cray_id_parse(hex, NULL), CRAY_EINVAL);

  CHECK(strcmp(cray_version(), CRAY_VERSION_STRING) == 0);

  /* options carry their size: an older caller's shorter struct still opens */
  cray_options o;
  cray_options_init(&o);
  CHECK_EQ(o.size, sizeof o);
  o.workers = 1;
  o.size = offsetof(cray_options, lua_path);
  cray_runtime *rt = NULL;
  CHECK_EQ(cray_open(&rt, &o), 0);
  cray_close(rt);
  o.size = offsetof(cray_options, workers);
  rt = NULL;
  CHECK_EQ(cray_open(&rt, &o), CRAY_EINVAL);
  CHECK(rt == NULL);
}

/* ---- threads ---- */

#define THREADS 8
#define CALLS 200

typedef struct thread_arg {
  cray_runtime *rt;
  cray_id actor;
  int index, wrong;
} thread_arg;

static void *caller(void *p) {
  thread_arg *a = p;
  for (int i = 0; i < CALLS; i++) {
    long long args[2] = {a->index, i};
    pack pk;
    pack_ints(&pk, 2, args);
    cray_id r1, r2;
    int rc1 = cray_call(a->rt, i % 2 ? "c.sum" : FIX "add", pk.sb.data, pk.sb.size, &r1);
    int rc2 = cray_actor_call(a->rt, &a->actor, "incr", (const uint8_t[]){0x91, 0x01}, 2, &r2);
    msgpack_sbuffer_destroy(&pk.sb);
    long long out[2];
    if (rc1 || get_ints(a->rt, &r1, out, 2) != 1 || out[0] != a->index + i) a->wrong++;
    if (rc2 || get_ints(a->rt, &r2, out, 2) != 1 || out[0] < 1) a->wrong++;
    if (!rc1) cray_release(a->rt, &r1);
    if (!rc2) cray_release(a->rt, &r2);
  }
  return NULL;
}

static void test_threads(void) {
  cray_runtime *rt = check_open(2, 64 << 20);
  CHECK_EQ(cray_register(rt, "sum", c_sum, NULL), 0);
  cray_id actor, r;
  CHECK_EQ(cray_actor_create(rt, FIX "Counter", (const uint8_t[]){0x91, 0x00}, 2, &actor), 0);
  pthread_t th[THREADS];
  thread_arg args[THREADS];
  for (int i = 0; i < THREADS; i++) {
    args[i] = (thread_arg){rt, actor, i, 0};
    pthread_create(&th[i], NULL, caller, &args[i]);
  }
  int wrong = 0;
  for (int i = 0; i < THREADS; i++) {
    pthread_join(th[i], NULL);
    wrong += args[i].wrong;
  }
  CHECK_EQ(wrong, 0);
  CHECK_EQ(cray_actor_call(rt, &actor, "get", (const uint8_t[]){0x90}, 1, &r), 0);
  long long out[2];
  CHECK_EQ(get_ints(rt, &r, out, 2), 1);
  CHECK_EQ(out[0], THREADS * CALLS);
  CHECK_EQ(cray_release(rt, &r), 0);
  CHECK_EQ(cray_release(rt, &actor), 0);
  cray_close(rt);
}

int main(void) {
  RUN(test_call_lua_function);
  RUN(test_call_errors);
  RUN(test_actors);
  RUN(test_c_functions);
  RUN(test_busy_nested);
  RUN(test_c_callbacks);
  RUN(test_bad_input);
  RUN(test_ids_versions_options);
  RUN(test_threads);
  return check_done();
}
