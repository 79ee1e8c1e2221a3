/*
 * hello.c: cray inside a C program. Stores a MessagePack value made with msgpack-c, lets a
 * Lua driver read it by id, and reads back what the driver stored.
 *
 *   make && build/examples/embed/hello
 */
#include <cray.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  cray_runtime *rt;
  int rc = cray_open(&rt, NULL);
  if (rc) {
    fprintf(stderr, "cray_open: %s\n", cray_strerror(rc));
    return 1;
  }

  /* {"greeting": "hello", "n": 3} */
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 2);
  msgpack_pack_str_with_body(&pk, "greeting", 8);
  msgpack_pack_str_with_body(&pk, "hello", 5);
  msgpack_pack_str_with_body(&pk, "n", 1);
  msgpack_pack_int(&pk, 3);
  cray_id id;
  rc = cray_put(rt, sb.data, sb.size, &id);
  msgpack_sbuffer_destroy(&sb);
  if (rc) {
    fprintf(stderr, "cray_put: %s\n", cray_strerror(rc));
    return 1;
  }
  cray_store_stats st;
  cray_store_stats_get(rt, &st);
  printf("stored %llu object(s), %llu bytes\n", (unsigned long long)st.objects,
         (unsigned long long)st.bytes);

  /* A Lua driver on the same runtime; its state closes when the chunk ends. */
  char *err = NULL;
  rc = cray_run_string(rt,
                       "local r = cray.put({lua = 'ran', squares = {1, 4, 9}})\n"
                       "print(('driver: %s objects in the store'):format(cray.stats().store.objects))\n",
                       "=driver", &err);
  if (rc) {
    fprintf(stderr, "driver failed: %s\n", err);
    free(err);
    return 1;
  }

  cray_view view;
  rc = cray_get(rt, &id, 1.0, &view);
  if (rc) {
    fprintf(stderr, "cray_get: %s\n", cray_strerror(rc));
    return 1;
  }
  msgpack_unpacked up;
  msgpack_unpacked_init(&up);
  size_t off = 0;
  msgpack_unpack_next(&up, (const char *)view.data, view.len, &off);
  printf("read back: ");
  msgpack_object_print(stdout, up.data);
  printf("\n");
  msgpack_unpacked_destroy(&up);
  cray_view_release(rt, &view);

  cray_release(rt, &id);
  cray_close(rt);
  return 0;
}
