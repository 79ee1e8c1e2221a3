/*
 * test_capi.c: the public C interface (cray.h): open and close, put and get of MessagePack
 * blobs made with msgpack-c, releases, bad input, sizes, error names, Lua drivers.
 */
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "../../runtime/cray.h"
#include "../../runtime/runtime.h"
#include "check.h"

static void test_put_get_release(void) {
  cray_runtime *rt = check_open(1, 1 << 20);
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 2);
  msgpack_pack_str_with_body(&pk, "n", 1);
  msgpack_pack_int64(&pk, -123456789);
  msgpack_pack_str_with_body(&pk, "xs", 2);
  msgpack_pack_array(&pk, 3);
  msgpack_pack_double(&pk, 1.5);
  msgpack_pack_nil(&pk);
  msgpack_pack_true(&pk);

  cray_id id;
  CHECK_EQ(cray_put(rt, sb.data, sb.size, &id), 0);
  cray_view v;
  CHECK_EQ(cray_get(rt, &id, 1.0, &v), 0);
  CHECK_EQ(v.len, sb.size);
  CHECK_EQ(v.count, 1);
  CHECK(memcmp(v.data, sb.data, sb.size) == 0);

  msgpack_unpacked up;
  msgpack_unpacked_init(&up);
  size_t off = 0;
  CHECK_EQ(msgpack_unpack_next(&up, (const char *)v.data, v.len, &off), MSGPACK_UNPACK_SUCCESS);
  CHECK_EQ(up.data.type, MSGPACK_OBJECT_MAP);
  CHECK_EQ(up.data.via.map.ptr[0].val.via.i64, -123456789);
  msgpack_unpacked_destroy(&up);

  cray_store_stats st;
  cray_store_stats_get(rt, &st);
  CHECK_EQ(st.objects, 1);
  CHECK_EQ(st.bytes, sb.size);
  CHECK_EQ(st.budget, 1 << 20);

  CHECK_EQ(cray_release(rt, &id), 0);
  cray_store_stats_get(rt, &st);
  CHECK_EQ(st.objects, 0);
  CHECK(v.data[0] == (uint8_t)sb.data[0]); /* the view outlives the object */
  cray_view_release(rt, &v);
  CHECK_EQ(cray_get(rt, &id, 0, &v), CRAY_ENOTFOUND);
  CHECK_EQ(cray_release(rt, &id), CRAY_ENOTFOUND);
  msgpack_sbuffer_destroy(&sb);
  cray_close(rt);
}

static void test_refs_inside_blobs(void) {
  cray_runtime *rt = check_open(1, 1 << 20);
  cray_id inner, outer;
  const uint8_t one[] = {0x01};
  CHECK_EQ(cray_put(rt, one, 1, &inner), 0);

  /* [ext REF(inner)] : fixarray(1), fixext16 type 1, 16 id bytes */
  uint8_t blob[19] = {0x91, 0xd8, 0x01};
  for (int i = 0; i < 8; i++) {
    blob[3 + i] = (uint8_t)(inner.hi >> (56 - 8 * i));
    blob[11 + i] = (uint8_t)(inner.lo >> (56 - 8 * i));
  }
  CHECK_EQ(cray_put(rt, blob, sizeof blob, &outer), 0);
  CHECK_EQ(cray_release(rt, &inner), 0);
  /* Releases beyond the one cray_put gave are refused: the outer blob's stays. */
  CHECK_EQ(cray_release(rt, &inner), CRAY_EINVAL);
  CHECK_EQ(cray_release(rt, &inner), CRAY_EINVAL);
  cray_view v;
  CHECK_EQ(cray_get(rt, &inner, 0, &v), 0); /* the outer blob keeps it alive */
  CHECK_EQ(v.data[0], 1);
  cray_view_release(rt, &v);
  CHECK_EQ(cray_release(rt, &outer), 0);
  CHECK_EQ(cray_get(rt, &inner, 0, &v), CRAY_ENOTFOUND); /* both gone now */

  blob[18] ^= 0xff; /* a ref to no object */
  cray_id bad;
  CHECK_EQ(cray_put(rt, blob, sizeof blob, &bad), CRAY_ENOTFOUND);
  cray_store_stats st;
  cray_store_stats_get(rt, &st);
  CHECK_EQ(st.objects, 0);
  cray_close(rt);
}

static void test_bad_blobs(void) {
  cray_runtime *rt = check_open(1, 1 << 20);
  cray_id id;
  const uint8_t two_values[] = {0x01, 0x02};
  const uint8_t truncated_str[] = {0xa5, 'a', 'b'};
  const uint8_t never_used[] = {0xc1};
  const uint8_t huge_array[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
  const uint8_t bad_ref_len[] = {0xd4, 0x01, 0x00};
  CHECK_EQ(cray_put(rt, two_values, 2, &id), CRAY_EBADBLOB);
  CHECK_EQ(cray_put(rt, truncated_str, 3, &id), CRAY_EBADBLOB);
  CHECK_EQ(cray_put(rt, never_used, 1, &id), CRAY_EBADBLOB);
  CHECK_EQ(cray_put(rt, huge_array, 5, &id), CRAY_EBADBLOB);
  CHECK_EQ(cray_put(rt, bad_ref_len, 3, &id), CRAY_EBADBLOB);
  CHECK_EQ(cray_put(rt, NULL, 0, &id), CRAY_EBADBLOB);
  CHECK_EQ(cray_put(rt, NULL, 5, &id), CRAY_EINVAL);
  uint8_t deep[300];
  memset(deep, 0x91, sizeof deep);
  deep[299] = 0xc0;
  CHECK_EQ(cray_put(rt, deep, sizeof deep, &id), CRAY_EBADBLOB);
  cray_store_stats st;
  cray_store_stats_get(rt, &st);
  CHECK_EQ(st.objects, 0);
  cray_close(rt);
}

static void test_get_timeout_on_pending(void) {
  cray_runtime *rt = check_open(1, 1 << 20);
  cray_id id = cray__id_new(&rt->ids);
  cray__entry *e = cray__store_insert(rt->store, id, NULL);
  cray_view v;
  CHECK_EQ(cray_get(rt, &id, 0.02, &v), CRAY_ETIMEDOUT);
  const uint8_t err[] = {0xa3, 'b', 'a', 'd'};
  cray__store_resolve(rt->store, e, cray__blob_new(err, 4, 1, NULL, 0, 0), 1);
  CHECK_EQ(cray_get(rt, &id, 0, &v), CRAY_EOBJERROR);
  CHECK_EQ(v.len, 4);
  cray_view_release(rt, &v);
  cray__store_release(rt->store, e);
  cray_close(rt);
}

static void test_errors_and_sizes(void) {
  CHECK(strcmp(cray_err_name(CRAY_ETIMEDOUT), "CRAY_ETIMEDOUT") == 0);
  CHECK(strcmp(cray_strerror(CRAY_ENOTFOUND), "no such object") == 0);
  CHECK(strcmp(cray_strerror(-999), "unknown error") == 0);
  CHECK(strcmp(cray_err_name(-999), "CRAY_EUNKNOWN") == 0);
  size_t n = 0;
  CHECK_EQ(cray_parse_size("512M", &n), 0);
  CHECK_EQ(n, 512ull << 20);
  CHECK_EQ(cray_parse_size("2g", &n), 0);
  CHECK_EQ(n, 2ull << 30);
  CHECK_EQ(cray_parse_size("1.5KB", &n), 0);
  CHECK_EQ(n, 1536);
  CHECK_EQ(cray_parse_size("77", &n), 0);
  CHECK_EQ(n, 77);
  const char *bad[] = {"", "M", "-1G", "12Q", "1e400", "5 M x", NULL};
  for (int i = 0; bad[i]; i++) CHECK_EQ(cray_parse_size(bad[i], &n), CRAY_EINVAL);

  cray_options o;
  cray_options_init(&o);
  o.workers = -1;
  cray_runtime *rt = NULL;
  CHECK_EQ(cray_open(&rt, &o), CRAY_EINVAL);
  CHECK(rt == NULL);
}

/* Each public function refuses NULL where it needs a pointer, or ignores it when it
 * returns nothing, with no effect either way. */
static void test_null_arguments(void) {
  cray_runtime *rt = check_open(1, 1 << 20);
  const uint8_t one[] = {0x01};
  cray_id id, none = {0, 0};
  CHECK_EQ(cray_put(rt, one, 1, &id), 0);
  cray_view v = {0};
  cray_store_stats st;
  char buf[33] = "untouched";
  size_t n;
  char *err = NULL;

  CHECK_EQ(cray_open(NULL, NULL), CRAY_EINVAL);
  cray_options o;
  cray_options_init(&o);
  CHECK_EQ(cray_open(NULL, &o), CRAY_EINVAL);
  const char *names[] = {"db"}, *null_name[] = {NULL};
  const double counts[] = {1};
  cray_runtime *other = NULL;
  o.nresources = 1; /* with one array NULL, then the other, then a NULL name */
  o.resource_counts = counts;
  CHECK_EQ(cray_open(&other, &o), CRAY_EINVAL);
  o.resource_names = names, o.resource_counts = NULL;
  CHECK_EQ(cray_open(&other, &o), CRAY_EINVAL);
  o.resource_names = null_name, o.resource_counts = counts;
  CHECK_EQ(cray_open(&other, &o), CRAY_EINVAL);
  CHECK(other == NULL);

  CHECK_EQ(cray_put(NULL, one, 1, &id), CRAY_EINVAL);
  CHECK_EQ(cray_put(rt, one, 1, NULL), CRAY_EINVAL);
  CHECK_EQ(cray_get(NULL, &id, 0, &v), CRAY_EINVAL);
  CHECK_EQ(cray_get(rt, NULL, 0, &v), CRAY_EINVAL);
  CHECK_EQ(cray_get(rt, &id, 0, NULL), CRAY_EINVAL);
  CHECK_EQ(cray_release(NULL, &id), CRAY_EINVAL);
  CHECK_EQ(cray_release(rt, NULL), CRAY_EINVAL);
  CHECK_EQ(cray_release(rt, &none), CRAY_ENOTFOUND);
  CHECK_EQ(cray_parse_size(NULL, &n), CRAY_EINVAL);
  CHECK_EQ(cray_parse_size("1M", NULL), CRAY_EINVAL);
  CHECK_EQ(cray_run_string(NULL, "return 1", "=x", &err), CRAY_EINVAL);
  CHECK_EQ(cray_run_string(rt, NULL, "=x", &err), CRAY_EINVAL);
  CHECK_EQ(cray_run_file(NULL, "x.lua", &err), CRAY_EINVAL);
  CHECK_EQ(cray_run_file(rt, NULL, &err), CRAY_EINVAL);
  CHECK(err == NULL);
  cray_options_init(NULL);
  cray_view_release(NULL, &v);
  cray_view_release(rt, NULL);
  cray_store_stats_get(NULL, &st);
  cray_store_stats_get(rt, NULL);
  cray_id_format(NULL, buf);
  cray_id_format(&id, NULL);
  CHECK(strcmp(buf, "untouched") == 0);
  cray_close(NULL);

  cray_store_stats_get(rt, &st); /* none of it touched the object */
  CHECK_EQ(st.objects, 1);
  cray_id_format(&id, buf);
  CHECK_EQ(strlen(buf), 32);
  CHECK_EQ(cray_release(rt, &id), 0);
  cray_close(rt);
}

static void test_lua_drivers(void) {
  cray_runtime *rt = check_open(1, 1 << 20);
  char *err = NULL;
  CHECK_EQ(cray_run_string(rt, "assert(cray.get(cray.put(21)) == 21); k = cray.put('kept')",
                           "=driver", &err), 0);
  CHECK(err == NULL);
  cray_store_stats st;
  cray_store_stats_get(rt, &st);
  CHECK_EQ(st.objects, 0); /* the driver's state is closed: its refs are released */
  CHECK_EQ(st.puts, 2);

  CHECK_EQ(cray_run_string(rt, "local x = nil; return x.field", "=bad", &err), CRAY_ELUA);
  CHECK(err && strstr(err, "bad:1:") && strstr(err, "stack traceback"));
  free(err);
  CHECK_EQ(cray_run_string(rt, "cray.init()", "=init", &err), CRAY_ELUA);
  CHECK(err && strstr(err, "embedding program provides"));
  free(err);
  CHECK_EQ(cray_run_file(rt, "/nonexistent.lua", &err), CRAY_ELUA);
  CHECK(err && strstr(err, "cannot open /nonexistent.lua"));
  free(err);
  cray_close(rt);
}

int main(void) {
  RUN(test_put_get_release);
  RUN(test_refs_inside_blobs);
  RUN(test_bad_blobs);
  RUN(test_get_timeout_on_pending);
  RUN(test_errors_and_sizes);
  RUN(test_null_arguments);
  RUN(test_lua_drivers);
  return check_done();
}
