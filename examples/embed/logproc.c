/*
 * logproc.c: a log processor that embeds cray. It reads log lines on stdin and fans each
 * out to a small pipeline of tasks:
 *
 *   line --logproc.parse (Lua task)--> record --c.bucket (this file's C function)--> size
 *        \________________ both, by reference ________________> Aggregator.add (an actor)
 *
 * then asks the actor for its report, and says which lines could not be parsed (reading
 * the parse error's message with cray_error_info). Nothing waits until the end: every
 * call returns an id at once, and arguments pass by reference from one task to the next.
 *
 *   make && build/examples/embed/logproc examples/embed < examples/embed/access.log
 *
 * Against an installed cray (make install PREFIX=/usr/local), from this directory:
 *
 *   cc logproc.c $(pkg-config --cflags --libs cray msgpack) -o logproc
 *   ./logproc . < access.log
 *
 * The argument is the directory that holds logproc.lua (default: the current one).
 */
#include <cray.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *what, int rc) {
  fprintf(stderr, "logproc: %s: %s (%s)\n", what, cray_strerror(rc), cray_err_name(rc));
  exit(1);
}

static void pack_ref(msgpack_packer *pk, const cray_id *id) {
  unsigned char b[16];
  for (int i = 0; i < 8; i++) {
    b[i] = (unsigned char)(id->hi >> (56 - 8 * i));
    b[8 + i] = (unsigned char)(id->lo >> (56 - 8 * i));
  }
  msgpack_pack_ext(pk, 16, 1); /* cray's ObjectRef extension */
  msgpack_pack_ext_body(pk, b, 16);
}

/* c.bucket(record) -> "small", "medium" or "large", by the record's bytes. Runs on a
 * worker thread; args is a MessagePack array of the arguments. */
static int bucket(void *ud, const uint8_t *args, size_t len, cray_buffer *out) {
  (void)ud;
  msgpack_unpacked up;
  msgpack_unpacked_init(&up);
  size_t off = 0;
  long long bytes = -1;
  if (msgpack_unpack_next(&up, (const char *)args, len, &off) == MSGPACK_UNPACK_SUCCESS &&
      up.data.type == MSGPACK_OBJECT_ARRAY && up.data.via.array.size == 1 &&
      up.data.via.array.ptr[0].type == MSGPACK_OBJECT_MAP) {
    msgpack_object_map *m = &up.data.via.array.ptr[0].via.map;
    for (uint32_t i = 0; i < m->size; i++)
      if (m->ptr[i].key.type == MSGPACK_OBJECT_STR && m->ptr[i].key.via.str.size == 5 &&
          memcmp(m->ptr[i].key.via.str.ptr, "bytes", 5) == 0)
        bytes = m->ptr[i].val.via.i64;
  }
  msgpack_unpacked_destroy(&up);
  if (bytes < 0) return CRAY_EINVAL; /* fails the task, naming the code */
  const char *b = bytes < 4096 ? "small" : bytes < 65536 ? "medium" : "large";
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_str_with_body(&pk, b, strlen(b));
  int rc = cray_buffer_append(out, sb.data, sb.size);
  msgpack_sbuffer_destroy(&sb);
  return rc;
}

typedef struct line_ids {
  cray_id parsed, added;
} line_ids;

int main(int argc, char **argv) {
  char path[4096];
  snprintf(path, sizeof path, "%s/?.lua", argc > 1 ? argv[1] : ".");
  cray_options o;
  cray_options_init(&o);
  o.lua_path = path; /* where worker states find module "logproc" */
  cray_runtime *rt;
  int rc = cray_open(&rt, &o);
  if (rc) die("cray_open", rc);
  if ((rc = cray_register(rt, "bucket", bucket, NULL))) die("cray_register", rc);

  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, 0);
  cray_id agg;
  if ((rc = cray_actor_create(rt, "logproc.Aggregator", sb.data, sb.size, &agg)))
    die("cray_actor_create", rc);

  line_ids *lines = NULL;
  size_t n = 0, cap = 0, linecap = 0;
  char *line = NULL;
  ssize_t got;
  while ((got = getline(&line, &linecap, stdin)) > 0) {
    if (line[got - 1] == '\n') line[--got] = 0;
    if (n == cap && !(lines = realloc(lines, (cap = cap ? 2 * cap : 64) * sizeof *lines)))
      die("realloc", CRAY_ENOMEM);
    line_ids *l = &lines[n++];
    cray_id size;
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_str_with_body(&pk, line, (size_t)got);
    if ((rc = cray_call(rt, "logproc.parse", sb.data, sb.size, &l->parsed))) die("parse", rc);
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_array(&pk, 1);
    pack_ref(&pk, &l->parsed);
    if ((rc = cray_call(rt, "c.bucket", sb.data, sb.size, &size))) die("bucket", rc);
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_array(&pk, 2);
    pack_ref(&pk, &l->parsed);
    pack_ref(&pk, &size);
    if ((rc = cray_actor_call(rt, &agg, "add", sb.data, sb.size, &l->added))) die("add", rc);
    cray_release(rt, &size); /* the add call holds it while it needs it */
  }
  free(line);

  /* Which lines failed: their add failed because parse did; parse's error says why. */
  for (size_t i = 0; i < n; i++) {
    cray_view v;
    rc = cray_get(rt, &lines[i].added, -1, &v);
    if (rc == CRAY_EOBJERROR) {
      cray_view_release(rt, &v);
      cray_error e;
      if (cray_get(rt, &lines[i].parsed, -1, &v) == CRAY_EOBJERROR && cray_error_info(&v, &e) == 0)
        printf("line %zu skipped: %s: %s\n", i + 1, e.kind, e.message);
    } else if (rc) {
      die("get", rc);
    }
    cray_view_release(rt, &v);
    cray_release(rt, &lines[i].parsed);
    cray_release(rt, &lines[i].added);
  }
  free(lines);

  /* Calls from one thread reach the actor in order: the report comes after every add. */
  msgpack_sbuffer_clear(&sb);
  msgpack_pack_array(&pk, 0);
  cray_id report;
  if ((rc = cray_actor_call(rt, &agg, "report", sb.data, sb.size, &report))) die("report", rc);
  cray_view v;
  if ((rc = cray_get(rt, &report, -1, &v))) die("report", rc);
  msgpack_unpacked up;
  msgpack_unpacked_init(&up);
  size_t off = 0;
  if (msgpack_unpack_next(&up, (const char *)v.data, v.len, &off) == MSGPACK_UNPACK_SUCCESS &&
      up.data.type == MSGPACK_OBJECT_ARRAY)
    for (uint32_t i = 0; i < up.data.via.array.size; i++)
      printf("%.*s\n", (int)up.data.via.array.ptr[i].via.str.size,
             up.data.via.array.ptr[i].via.str.ptr);
  msgpack_unpacked_destroy(&up);
  cray_view_release(rt, &v);
  cray_release(rt, &report);
  cray_release(rt, &agg);
  msgpack_sbuffer_destroy(&sb);
  cray_close(rt);
  return 0;
}
