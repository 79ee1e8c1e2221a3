/*
 * test_spill.c: the object store past its memory budget: the spill environment on its
 * own (runtime/spill.c), spilling and restoring through the store (evict.c, store.c's
 * pins), nested refs and pinned blobs, readers racing the spill thread, a full disk and
 * a full spill space, views outliving the runtime, the big-block cache, and a task's
 * arguments counted in the budget without locks. Run it under -fsanitize=thread too: the
 * race test is for that.
 */
/* A pin of the entry `pause_at` stops between taking the pin and reading the entry, until
 * the test lets it go (test_pin_races_a_restore). */
struct cray__entry;
static void pin_pause(const struct cray__entry *e);
#define CRAY__STORE_PIN_PAUSE(e) pin_pause(e)

#include <dirent.h>
#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../runtime/bigmem.h"
#include "../../runtime/runtime.h"
#include "../../runtime/spill.h"
#include "../../runtime/store_internal.h"
#include "check.h"

/* ---- helpers ---- */

static char *temp_dir(void) {
  static char dirs[16][64];
  static int n;
  char *d = dirs[n++ % 16];
  snprintf(d, 64, "/tmp/cray-test-XXXXXX");
  return mkdtemp(d);
}

static int count_files(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(d);
  return n;
}

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* len bytes that tell object `seed` from every other, position by position. */
static void fill(uint8_t *p, size_t len, uint32_t seed) {
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < len; i++) {
    x = x * 1103515245u + 12345u;
    p[i] = (uint8_t)(x >> 16);
  }
}

static int same_fill(const uint8_t *p, size_t len, uint32_t seed) {
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < len; i++) {
    x = x * 1103515245u + 12345u;
    if (p[i] != (uint8_t)(x >> 16)) return 0;
  }
  return 1;
}

static cray__blob *filled_blob(size_t len, uint32_t seed) {
  cray__blob *b = cray__blob_alloc(NULL, len, 1, NULL, 0, 0);
  fill(b->data, len, seed);
  return b;
}

static cray_runtime *open_rt(size_t memory, const char *dir, size_t spill_max) {
  cray_options o;
  cray_options_init(&o);
  o.memory = memory;
  o.spill_dir = dir;
  o.spill_max = spill_max;
  cray_runtime *rt = NULL;
  int rc = cray_open(&rt, &o);
  if (rc) fprintf(stderr, "cray_open: %s\n", cray__open_error(rc));
  return rt;
}

/* Reserves and inserts a blob of len bytes filled from seed; NULL when reserve refused. */
static cray__entry *put_filled(cray_runtime *rt, size_t len, uint32_t seed) {
  if (cray__store_reserve(rt->store, len, 1) != 0) return NULL;
  return cray__store_insert(rt->store, cray__id_new(&rt->ids), filled_blob(len, seed));
}

static int is_spilled(cray__entry *e) {
  return (atomic_load(&e->stored)->flags & CRAY__BLOB_SPILLED) != 0;
}

/* ---- the environment on its own ---- */

static void test_env_write_read_delete(void) {
  char *dir = temp_dir();
  char keep[128];
  snprintf(keep, sizeof keep, "%s/keep", dir);
  fclose(fopen(keep, "w"));
  cray__spill *sp;
  char why[256];
  CHECK_EQ(cray__spill_open(&sp, dir, 0, why, sizeof why), 0);
  CHECK_EQ(count_files(dir), 1); /* nothing made before the first write */
  CHECK(strcmp(cray__spill_dir(sp), dir) == 0);
  size_t big = 3 << 20;
  uint8_t *a = malloc(big), small[100], *back = malloc(big);
  fill(a, big, 1);
  fill(small, sizeof small, 2);
  cray__spill_item items[3] = {{{1, 1}, a, big}, {{1, 2}, small, sizeof small}, {{1, 3}, small, 0}};
  size_t done;
  CHECK_EQ(cray__spill_write(sp, items, 3, &done), 0);
  CHECK_EQ(done, 3);
  CHECK_EQ(count_files(dir), 2); /* keep, and cray's own directory */
  const char *own = cray__spill_dir(sp);
  struct stat st;
  CHECK(strncmp(own, dir, strlen(dir)) == 0 && own[strlen(dir)] == '/');
  CHECK(stat(own, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700);
  CHECK_EQ(count_files(own), 2); /* the data file and its lock file */
  CHECK_EQ(cray__spill_count(sp), 3);
  CHECK_EQ(cray__spill_read(sp, &items[0].id, back, big), 0);
  CHECK(memcmp(a, back, big) == 0);
  CHECK_EQ(cray__spill_read(sp, &items[1].id, back, sizeof small), 0);
  CHECK(memcmp(small, back, sizeof small) == 0);
  CHECK_EQ(cray__spill_read(sp, &items[2].id, back, 0), 0);
  CHECK_EQ(cray__spill_read(sp, &items[1].id, back, 99), CRAY_EBADBLOB);
  CHECK(cray__spill_used(sp) >= big);
  CHECK_EQ(cray__spill_delete(sp, items, 1), 0);
  CHECK_EQ(cray__spill_read(sp, &items[0].id, back, big), MDB_NOTFOUND);
  CHECK_EQ(cray__spill_count(sp), 2);
  CHECK(cray__spill_used(sp) < big);
  CHECK_EQ(cray__spill_delete(sp, items, 1), 0); /* gone already: not an error */
  cray__spill_close(sp);
  CHECK_EQ(count_files(dir), 1); /* a user's directory keeps its other files */
  unlink(keep);
  rmdir(dir);
  free(a);
  free(back);
}

/* Values past 64 MiB go in chunks: written, read and deleted whole. */
static void test_env_chunks(void) {
  char *dir = temp_dir();
  cray__spill *sp;
  char why[256];
  CHECK_EQ(cray__spill_open(&sp, dir, 0, why, sizeof why), 0);
  size_t len = (130 << 20) + 5;
  uint8_t *a = malloc(len), *back = malloc(len);
  fill(a, len, 3);
  cray__spill_item it = {{3, 3}, a, len}, small = {{3, 4}, a, 10};
  size_t done;
  cray__spill_item both[2] = {it, small};
  CHECK_EQ(cray__spill_write(sp, both, 2, &done), 0);
  CHECK_EQ(done, 2);
  CHECK_EQ(cray__spill_count(sp), 4); /* three chunks and one */
  memset(back, 0, len);
  CHECK_EQ(cray__spill_read(sp, &it.id, back, len), 0);
  CHECK(memcmp(a, back, len) == 0);
  CHECK_EQ(cray__spill_read(sp, &it.id, back, len - 1), CRAY_EBADBLOB);
  CHECK_EQ(cray__spill_delete(sp, &it, 1), 0);
  CHECK_EQ(cray__spill_count(sp), 1);
  CHECK_EQ(cray__spill_read(sp, &small.id, back, 10), 0);
  cray__spill_close(sp);
  rmdir(dir);
  free(a);
  free(back);
}

static void test_env_default_dir_is_removed(void) {
  char *tmp = temp_dir();
  const char *old = getenv("TMPDIR");
  char *saved = old ? strdup(old) : NULL;
  setenv("TMPDIR", tmp, 1);
  cray__spill *sp;
  char why[256];
  CHECK_EQ(cray__spill_open(&sp, NULL, 0, why, sizeof why), 0);
  CHECK_EQ(count_files(tmp), 0); /* nothing until the first write */
  uint8_t one = 1;
  cray__spill_item it = {{4, 1}, &one, 1};
  size_t done;
  CHECK_EQ(cray__spill_write(sp, &it, 1, &done), 0);
  CHECK_EQ(count_files(tmp), 1);
  CHECK(strncmp(cray__spill_dir(sp), tmp, strlen(tmp)) == 0);
  cray__spill_close(sp);
  CHECK_EQ(count_files(tmp), 0);
  /* A runtime that never spills makes nothing there. */
  cray_runtime *rt = open_rt(1 << 20, NULL, 0);
  CHECK(rt != NULL);
  cray_id id;
  CHECK_EQ(cray_put(rt, "\xa1x", 2, &id), 0);
  CHECK_EQ(count_files(tmp), 0);
  cray_close(rt);
  /* A directory it had to make is removed too; one that was there stays. */
  char made[128];
  snprintf(made, sizeof made, "%s/made", tmp);
  CHECK_EQ(cray__spill_open(&sp, made, 0, why, sizeof why), 0);
  CHECK(exists(made));
  CHECK_EQ(cray__spill_write(sp, &it, 1, &done), 0);
  cray__spill_close(sp);
  CHECK(!exists(made));
  if (saved) setenv("TMPDIR", saved, 1);
  else unsetenv("TMPDIR");
  free(saved);
  rmdir(tmp);
}

/* Files in the spill directory that look like cray's, a stale environment among them, are
 * neither reused nor removed: cray's environment goes in a directory of its own. */
static void test_env_keeps_others_files(void) {
  enum { N = 12 };
  char *dir = temp_dir();
  char names[N][64], path[N][160];
  snprintf(names[0], 64, "data.mdb");
  snprintf(names[1], 64, "lock.mdb");
  snprintf(names[2], 64, "cray-spill-000000");
  for (int i = 3; i < N; i++) snprintf(names[i], 64, "cray-%ld-%d.mdb", (long)getpid(), i - 3);
  for (int i = 0; i < N; i++) {
    snprintf(path[i], sizeof path[i], "%.64s/%.64s", dir, names[i]);
    FILE *f = fopen(path[i], "w");
    fputs(names[i], f);
    fclose(f);
  }
  cray__spill *sp;
  char why[256];
  CHECK_EQ(cray__spill_open(&sp, dir, 0, why, sizeof why), 0);
  uint8_t v[100];
  fill(v, sizeof v, 5);
  cray__spill_item it = {{5, 1}, v, sizeof v};
  size_t done;
  CHECK_EQ(cray__spill_write(sp, &it, 1, &done), 0);
  CHECK_EQ(done, 1);
  CHECK_EQ(count_files(dir), N + 1);
  uint8_t back[100];
  CHECK_EQ(cray__spill_read(sp, &it.id, back, sizeof back), 0);
  CHECK(memcmp(v, back, sizeof v) == 0);
  cray__spill_close(sp);
  CHECK_EQ(count_files(dir), N);
  for (int i = 0; i < N; i++) {
    char text[64] = {0};
    FILE *f = fopen(path[i], "r");
    CHECK(f && fgets(text, sizeof text, f) && strcmp(text, names[i]) == 0);
    if (f) fclose(f);
    unlink(path[i]);
  }
  rmdir(dir);
}

static void test_env_refuses_unusable_dirs(void) {
  cray__spill *sp;
  char why[256];
  CHECK_EQ(cray__spill_open(&sp, "/dev/null/spill", 0, why, sizeof why), CRAY_ESYS);
  CHECK(strstr(why, "cannot use spill directory '/dev/null/spill'") != NULL);
  CHECK(strstr(why, "Not a directory") != NULL);
  CHECK_EQ(cray__spill_open(&sp, "/proc/self/spill", 0, why, sizeof why), CRAY_ESYS);
  CHECK(strstr(why, "/proc/self/spill") != NULL);
  /* and cray_open says why */
  cray_options o;
  cray_options_init(&o);
  o.spill_dir = "/dev/null/spill";
  cray_runtime *rt = NULL;
  CHECK_EQ(cray_open(&rt, &o), CRAY_ESYS);
  CHECK(rt == NULL);
  CHECK(strstr(cray__open_error(CRAY_ESYS), "Not a directory") != NULL);
}

static void test_env_cap(void) {
  char *dir = temp_dir();
  cray__spill *sp;
  char why[256];
  CHECK_EQ(cray__spill_open(&sp, dir, 1 << 20, why, sizeof why), 0);
  CHECK_EQ(cray__spill_cap(sp), 1 << 20);
  static uint8_t v[300 << 10];
  cray__spill_item items[5];
  for (int i = 0; i < 5; i++) items[i] = (cray__spill_item){{2, (uint64_t)i}, v, sizeof v};
  size_t done;
  CHECK_EQ(cray__spill_write(sp, items, 5, &done), MDB_MAP_FULL);
  CHECK_EQ(done, 3); /* the ones that fit are written */
  CHECK_EQ(cray__spill_count(sp), 3);
  CHECK(strstr(cray__spill_why(MDB_MAP_FULL), "spill space is full") != NULL);
  CHECK_EQ(cray__spill_delete(sp, items, 1), 0);
  CHECK_EQ(cray__spill_write(sp, items + 3, 1, &done), 0);
  CHECK_EQ(done, 1);
  cray__spill_close(sp);
  rmdir(dir);
}

/* ---- spilling through the store ---- */

static void test_store_spills_and_restores(void) {
  char *dir = temp_dir();
  cray_runtime *rt = open_rt(4 << 20, dir, 0);
  enum { N = 64, LEN = 256 << 10 };
  cray__entry *v[N];
  for (int i = 0; i < N; i++) CHECK((v[i] = put_filled(rt, LEN, (uint32_t)i)) != NULL);
  cray_store_stats st;
  cray_store_stats_get(rt, &st);
  CHECK_EQ(st.objects, N);
  CHECK(st.spilled_objects > 0);
  CHECK(st.bytes <= (6 << 20) + LEN); /* the hard limit, one object over at most */
  CHECK_EQ(st.spilled_bytes, st.spilled_objects * LEN);
  int good = 0;
  for (int i = 0; i < N; i++) {
    cray__blob *b;
    if (cray__store_pin(rt->store, v[i], &b) != 0) continue;
    good += b->len == LEN && same_fill(b->data, LEN, (uint32_t)i);
    cray__store_unpin(v[i]);
  }
  CHECK_EQ(good, N);
  cray_store_stats_get(rt, &st);
  CHECK(st.restored_objects > 0);
  for (int i = 0; i < N; i++) cray__store_release(rt->store, v[i]);
  cray_store_stats_get(rt, &st);
  CHECK_EQ(st.objects, 0);
  CHECK_EQ(st.bytes, 0);
  CHECK_EQ(st.spilled_objects, 0);
  CHECK_EQ(st.spilled_bytes, 0);
  cray__store_spill_sync(rt->store);
  CHECK_EQ(cray__spill_count(rt->store->spill), 0); /* freed means gone from disk too */
  cray_close(rt);
  CHECK_EQ(count_files(dir), 0);
  rmdir(dir);
}

/* Values inside their entries stay in memory while the big ones around them spill. */
static void test_inline_values_stay(void) {
  char *dir = temp_dir();
  cray_runtime *rt = open_rt(1 << 20, dir, 0);
  enum { N = 1000, BIG = 16, LEN = 256 << 10 };
  cray__entry *small[N], *big[BIG];
  for (int i = 0; i < N; i++) {
    uint8_t v = (uint8_t)i;
    CHECK((small[i] = cray__store_insert_inline(rt->store, cray__id_new(&rt->ids), &v, 1, 1,
                                                0)) != NULL);
  }
  for (int i = 0; i < BIG; i++) CHECK((big[i] = put_filled(rt, LEN, (uint32_t)i)) != NULL);
  cray__store_spill_sync(rt->store);
  cray_store_stats st;
  cray_store_stats_get(rt, &st);
  CHECK(st.spilled_objects > 0);
  int good = 0;
  for (int i = 0; i < N; i++) {
    cray__blob *b;
    CHECK(!is_spilled(small[i]));
    if (cray__store_pin(rt->store, small[i], &b) != 0) continue;
    good += b->len == 1 && b->data[0] == (uint8_t)i;
    cray__store_unpin(small[i]);
  }
  CHECK_EQ(good, N);
  for (int i = 0; i < N; i++) cray__store_release(rt->store, small[i]);
  for (int i = 0; i < BIG; i++) cray__store_release(rt->store, big[i]);
  cray_store_stats_get(rt, &st);
  CHECK_EQ(st.objects, 0);
  CHECK_EQ(st.bytes, 0);
  cray_close(rt);
  rmdir(dir);
}

static void test_nested_refs_survive_spilling(void) {
  cray_runtime *rt = open_rt(64 << 10, NULL, 0);
  cray__store *s = rt->store;
  cray__entry *inner = put_filled(rt, 100, 7);
  cray__blob *ob = cray__blob_alloc(NULL, 1 << 20, 1, &inner, 1, 0);
  fill(ob->data, ob->len, 8);
  cray__entry *outer = cray__store_insert(s, cray__id_new(&rt->ids), ob);
  cray__store_release(s, inner); /* now only outer's blob holds it */
  for (int tries = 0; tries < 100 && !is_spilled(outer); tries++) cray__store_spill_sync(s);
  CHECK(is_spilled(outer));
  cray_store_stats st;
  cray_store_stats_get(rt, &st);
  CHECK_EQ(st.objects, 2); /* the husk keeps inner alive */
  cray__entry *again = cray__store_lookup(s, &inner->id);
  CHECK(again == inner);
  if (again) cray__store_release(s, again);
  cray__blob *b;
  CHECK_EQ(cray__store_pin(s, outer, &b), 0);
  CHECK(b->nrefs == 1 && b->refs[0] == inner && same_fill(b->data, b->len, 8));
  cray__store_unpin(outer);
  cray__store_release(s, outer);
  cray_store_stats_get(rt, &st);
  CHECK_EQ(st.objects, 0);
  cray_close(rt);
}

static void test_pinned_and_viewed_blobs_stay(void) {
  cray_runtime *rt = open_rt(1 << 20, NULL, 0);
  cray__store *s = rt->store;
  cray__entry *pinned = put_filled(rt, 1 << 20, 1), *viewed = put_filled(rt, 1 << 20, 2);
  cray__blob *pb, *vb;
  CHECK_EQ(cray__store_pin(s, pinned, &pb), 0);
  CHECK_EQ(cray__store_pin(s, viewed, &vb), 0);
  cray__blob_retain(vb); /* a view: a blob reference that outlives the pin */
  cray__store_unpin(viewed);
  for (int i = 0; i < 8; i++) cray__store_spill_sync(s);
  CHECK(!is_spilled(pinned) && atomic_load(&pinned->stored) == pb);
  CHECK(!is_spilled(viewed) && atomic_load(&viewed->stored) == vb);
  /* Past the hard limit with nothing that can leave memory: a put fails and says why. */
  CHECK_EQ(cray__store_reserve(s, 1 << 20, 1), CRAY_ENOMEM);
  char why[1024];
  cray__store_describe_full(s, 1 << 20, why, sizeof why);
  CHECK(strstr(why, "no room for a 1.0 MiB object") != NULL);
  CHECK(strstr(why, "budget 1.0 MiB") != NULL);
  CHECK(strstr(why, "in use (held by views or readers)") != NULL);
  /* A restore is never refused. */
  CHECK_EQ(cray__store_reserve(s, 1 << 20, 0), 0);
  cray__store_unpin(pinned);
  cray__blob_release(s, vb);
  /* Unpinned, they can go. */
  cray__entry *more = put_filled(rt, 1 << 20, 3);
  CHECK(more != NULL);
  for (int i = 0; i < 8 && !(is_spilled(pinned) && is_spilled(viewed)); i++)
    cray__store_spill_sync(s);
  CHECK(is_spilled(pinned) && is_spilled(viewed));
  cray__store_release(s, pinned);
  cray__store_release(s, viewed);
  if (more) cray__store_release(s, more);
  cray_close(rt);
}

/* A big object is let in when it is all that is left in memory, and spilled after. */
static void test_object_bigger_than_the_budget(void) {
  cray_runtime *rt = open_rt(1 << 20, NULL, 0);
  cray__entry *small = put_filled(rt, 100 << 10, 1);
  cray__entry *big = put_filled(rt, 8 << 20, 2);
  CHECK(small && big);
  for (int i = 0; i < 100 && !is_spilled(big); i++) cray__store_spill_sync(rt->store);
  CHECK(is_spilled(big));
  cray__blob *b;
  CHECK_EQ(cray__store_pin(rt->store, big, &b), 0);
  CHECK(b->len == 8 << 20 && same_fill(b->data, b->len, 2));
  cray__store_unpin(big);
  cray__store_release(rt->store, small);
  cray__store_release(rt->store, big);
  cray_close(rt);
}

typedef struct racer {
  cray_runtime *rt;
  cray__entry **v;
  int n, rounds, bad;
  unsigned seed;
} racer;

enum { RACE_LEN = 64 << 10 };

/* Pins random entries while the spill thread takes them out, checks every byte, and now
 * and then keeps one as a view would. */
static void *race_read(void *p) {
  racer *r = p;
  cray__blob *kept = NULL;
  for (int i = 0; i < r->rounds; i++) {
    int k = (int)(rand_r(&r->seed) % (unsigned)r->n);
    cray__blob *b;
    if (cray__store_pin(r->rt->store, r->v[k], &b) != 0) {
      r->bad++;
      continue;
    }
    r->bad += !(b->len == RACE_LEN && b->data[0] == (uint8_t)k &&
                b->data[RACE_LEN - 1] == (uint8_t)k);
    if (i % 16 == 0) {
      if (kept) cray__blob_release(r->rt->store, kept);
      cray__blob_retain(b);
      kept = b;
    }
    cray__store_unpin(r->v[k]);
  }
  if (kept) cray__blob_release(r->rt->store, kept);
  return NULL;
}

static void test_readers_race_the_spill_thread(void) {
  cray_runtime *rt = open_rt(1 << 20, NULL, 0);
  enum { N = 96 };
  cray__entry *v[N];
  for (int i = 0; i < N; i++) {
    cray__store_reserve(rt->store, RACE_LEN, 0);
    cray__blob *b = cray__blob_alloc(rt->store, RACE_LEN, 1, NULL, 0, 0);
    memset(b->data, i, RACE_LEN);
    v[i] = cray__store_insert(rt->store, cray__id_new(&rt->ids), b);
  }
  racer a = {rt, v, N, 3000, 0, 1}, b = {rt, v, N, 3000, 0, 2};
  pthread_t t;
  pthread_create(&t, NULL, race_read, &a);
  /* Meanwhile objects come and go, so the budget keeps being crossed. */
  for (int i = 0; i < 200; i++) {
    cray__entry *e = put_filled(rt, RACE_LEN, (uint32_t)i);
    if (i % 3 == 0) race_read(&(racer){rt, v, N, 10, 0, (unsigned)i});
    if (e) cray__store_release(rt->store, e);
  }
  race_read(&b);
  pthread_join(t, NULL);
  CHECK_EQ(a.bad, 0);
  CHECK_EQ(b.bad, 0);
  cray_store_stats st;
  cray_store_stats_get(rt, &st);
  CHECK(st.restored_objects > 0);
  for (int i = 0; i < N; i++) cray__store_release(rt->store, v[i]);
  cray_store_stats_get(rt, &st);
  CHECK_EQ(st.objects, 0);
  CHECK_EQ(st.spilled_objects, 0);
  cray_close(rt);
}

/* ---- a pin racing a restore ---- */

static const struct cray__entry *_Atomic pause_at;
static _Atomic int pause_step; /* 1: the pin is paused; 2: let it go */

static void pin_pause(const struct cray__entry *e) {
  if (e != atomic_load(&pause_at)) return;
  atomic_store(&pause_at, NULL); /* once */
  atomic_store(&pause_step, 1);
  while (atomic_load(&pause_step) != 2) sched_yield();
}

typedef struct paused_reader {
  cray_runtime *rt;
  cray__entry *e;
  int rc, good;
} paused_reader;

static void *paused_read(void *p) {
  paused_reader *r = p;
  cray__blob *b;
  if ((r->rc = cray__store_pin(r->rt->store, r->e, &b)) == 0) {
    r->good = b->len == RACE_LEN && same_fill(b->data, RACE_LEN, 7);
    cray__store_unpin(r->e);
  }
  return NULL;
}

/* A reader that has just pinned a spilled entry (its fast path) stops there while another
 * reader restores the entry and frees its husk: the first must then read the restored
 * blob, never the husk. */
static void test_pin_races_a_restore(void) {
  enum { N = 64 };
  cray_runtime *rt = open_rt(1 << 20, NULL, 0);
  cray__entry *x = put_filled(rt, RACE_LEN, 7), *other[N];
  int n = 0;
  /* More objects until x is spilled; reading the others keeps x the coldest. */
  while (n < N && !is_spilled(x)) {
    if (!(other[n] = put_filled(rt, RACE_LEN, 100 + (uint32_t)n))) break;
    n++;
    cray__blob *b;
    for (int k = 0; k < n; k++)
      if (cray__store_pin(rt->store, other[k], &b) == 0) cray__store_unpin(other[k]);
    cray__store_spill_sync(rt->store);
  }
  CHECK(is_spilled(x));
  paused_reader first = {rt, x, -1, 0}, second = {rt, x, -1, 0};
  atomic_store(&pause_at, x);
  pthread_t t;
  pthread_create(&t, NULL, paused_read, &first);
  while (atomic_load(&pause_step) != 1) sched_yield();
  paused_read(&second); /* restores x and frees its husk */
  atomic_store(&pause_step, 2);
  pthread_join(t, NULL);
  CHECK_EQ(second.rc, 0);
  CHECK(second.good);
  CHECK_EQ(first.rc, 0);
  CHECK(first.good);
  cray_store_stats st;
  cray_store_stats_get(rt, &st);
  CHECK(st.restored_objects > 0);
  cray__store_release(rt->store, x);
  for (int i = 0; i < n; i++) cray__store_release(rt->store, other[i]);
  cray_close(rt);
}

/* One putter and four readers through the public API, with a budget that makes them
 * spill and restore all along: every value read is whole. */
enum { API_N = 48, API_LEN = 96 << 10, API_ROUNDS = 300 };

typedef struct api_reader {
  cray_runtime *rt;
  const cray_id *ids;
  unsigned seed;
  int bad, read;
} api_reader;

/* A MessagePack bin 32 of API_LEN bytes filled from seed. */
static uint8_t *api_value(uint32_t seed) {
  uint8_t *p = malloc(5 + API_LEN);
  p[0] = 0xc6, p[1] = (uint8_t)(API_LEN >> 24), p[2] = (uint8_t)(API_LEN >> 16);
  p[3] = (uint8_t)(API_LEN >> 8), p[4] = (uint8_t)API_LEN;
  fill(p + 5, API_LEN, seed);
  return p;
}

static void *api_read(void *p) {
  api_reader *r = p;
  for (int i = 0; i < API_ROUNDS; i++) {
    int k = (int)(rand_r(&r->seed) % API_N);
    cray_view v;
    if (cray_get(r->rt, &r->ids[k], 5, &v) != 0) {
      r->bad++;
      continue;
    }
    r->bad += !(v.len == 5 + API_LEN && same_fill(v.data + 5, API_LEN, (uint32_t)k));
    r->read++;
    cray_view_release(r->rt, &v);
  }
  return NULL;
}

static void test_api_readers_race_a_putter(void) {
  cray_runtime *rt = open_rt(1 << 20, NULL, 0);
  cray_id ids[API_N];
  for (int i = 0; i < API_N; i++) {
    uint8_t *p = api_value((uint32_t)i);
    CHECK_EQ(cray_put(rt, p, 5 + API_LEN, &ids[i]), 0);
    free(p);
  }
  api_reader r[4];
  pthread_t t[4];
  for (int i = 0; i < 4; i++) {
    r[i] = (api_reader){rt, ids, (unsigned)i + 1, 0, 0};
    pthread_create(&t[i], NULL, api_read, &r[i]);
  }
  uint8_t *p = api_value(9999); /* the putter's objects come and go */
  for (int i = 0; i < API_ROUNDS / 2; i++) {
    cray_id id;
    if (cray_put(rt, p, 5 + API_LEN, &id) == 0) cray_release(rt, &id);
  }
  free(p);
  for (int i = 0; i < 4; i++) {
    pthread_join(t[i], NULL);
    CHECK_EQ(r[i].bad, 0);
    CHECK_EQ(r[i].read, API_ROUNDS);
  }
  cray_store_stats st;
  cray_store_stats_get(rt, &st);
  CHECK(st.restored_objects > 0);
  for (int i = 0; i < API_N; i++) CHECK_EQ(cray_release(rt, &ids[i]), 0);
  cray_close(rt);
}

/* ---- full ---- */

static void test_spill_space_full(void) {
  cray_runtime *rt = open_rt(1 << 20, NULL, 2 << 20);
  enum { MAX = 100, LEN = 128 << 10 };
  cray__entry *v[MAX];
  int n = 0;
  while (n < MAX && (v[n] = put_filled(rt, LEN, (uint32_t)n))) n++;
  CHECK(n > 8 && n < MAX); /* memory and disk held some, then it said no */
  char why[1024];
  cray__store_describe_full(rt->store, LEN, why, sizeof why);
  CHECK(strstr(why, "the spill space is full") != NULL);
  CHECK(strstr(why, "of 2.0 MiB (--spill-max)") != NULL);
  int good = 0;
  for (int i = 0; i < n; i++) { /* nothing stored was lost */
    cray__blob *b;
    if (cray__store_pin(rt->store, v[i], &b) == 0) {
      good += same_fill(b->data, LEN, (uint32_t)i);
      cray__store_unpin(v[i]);
    }
  }
  CHECK_EQ(good, n);
  /* Freeing makes room again. */
  for (int i = 0; i < n; i += 2) cray__store_release(rt->store, v[i]);
  cray__entry *e = put_filled(rt, LEN, 999);
  CHECK(e != NULL);
  if (e) cray__store_release(rt->store, e);
  for (int i = 1; i < n; i += 2) cray__store_release(rt->store, v[i]);
  cray_close(rt);
}

/* A disk that fills up: writes past RLIMIT_FSIZE fail as they would on a full disk. In a
 * child process, so that the limit stays there. */
static void test_disk_full(void) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    cray_runtime *rt = open_rt(1 << 20, NULL, 0);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = {4 << 20, 4 << 20};
    setrlimit(RLIMIT_FSIZE, &lim);
    enum { MAX = 200, LEN = 128 << 10 };
    cray__entry *v[MAX];
    int n = 0;
    while (n < MAX && (v[n] = put_filled(rt, LEN, (uint32_t)n))) n++;
    char why[1024];
    cray__store_describe_full(rt->store, LEN, why, sizeof why);
    int good = 0;
    for (int i = 0; i < n; i++) {
      cray__blob *b;
      if (cray__store_pin(rt->store, v[i], &b) == 0) {
        good += same_fill(b->data, LEN, (uint32_t)i);
        cray__store_unpin(v[i]);
      }
    }
    /* A short write is EIO, a refused one EFBIG: either way the message names the file. */
    int ok = n > 8 && n < MAX && good == n && strstr(why, "spill file") != NULL;
    if (!ok) fprintf(stderr, "disk full: n=%d good=%d why=%s\n", n, good, why);
    for (int i = 0; i < n; i++) cray__store_release(rt->store, v[i]);
    cray_close(rt);
    _exit(ok ? 0 : 1);
  }
  int status = -1;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* ---- views past the runtime, and the block cache ---- */

static void test_view_outlives_runtime(void) {
  cray_runtime *rt = open_rt(64 << 20, NULL, 0);
  cray__entry *small = put_filled(rt, 1000, 1), *big = put_filled(rt, 2 << 20, 2);
  cray__blob *sb, *bb;
  cray__store_pin(rt->store, small, &sb);
  cray__blob_retain(sb);
  cray__store_unpin(small);
  cray__store_pin(rt->store, big, &bb);
  cray__blob_retain(bb);
  cray__store_unpin(big);
  cray_close(rt); /* the views' blobs become orphans */
  CHECK(sb->flags & CRAY__BLOB_ORPHAN);
  CHECK(same_fill(sb->data, 1000, 1) && same_fill(bb->data, 2 << 20, 2));
  cray__blob_release(NULL, sb);
  cray__blob_release(NULL, bb);
}

static void test_bigmem_reuses_blocks(void) {
  cray__bigmem m;
  cray__bigmem_init(&m, 64 << 20);
  uint8_t *p = cray__bigmem_alloc(&m, 8 << 20);
  memset(p, 7, 8 << 20);
  cray__bigmem_free(&m, p, 8 << 20);
  CHECK_EQ(m.cached, 8 << 20);
  uint8_t *q = cray__bigmem_alloc(&m, 8 << 20);
  CHECK(q == p && q[12345] == 7); /* the same pages, already touched */
  cray__bigmem_free(&m, q, 8 << 20);
  uint8_t *r = cray__bigmem_alloc(&m, 4 << 20);
  CHECK(r == p && m.cached == 0); /* shrunk in place */
  cray__bigmem_free(&m, r, 4 << 20);
  uint8_t *g = cray__bigmem_alloc(&m, 16 << 20);
  CHECK(g != NULL && g[100] == 7); /* grown, keeping what was there */
  g[(16 << 20) - 1] = 1;
  cray__bigmem_free(&m, g, 16 << 20);
  uint8_t *huge = cray__bigmem_alloc(&m, 100 << 20);
  cray__bigmem_free(&m, huge, 100 << 20); /* over the cap: unmapped, not kept */
  CHECK_EQ(m.cached, 0);
  for (int i = 0; i < 6; i++) {
    void *b[6];
    for (int k = 0; k < 6; k++) b[k] = cray__bigmem_alloc(&m, 2 << 20);
    for (int k = 0; k < 6; k++) cray__bigmem_free(&m, b[k], 2 << 20);
    CHECK(m.n <= CRAY__BIG_SLOTS && m.cached <= 64 << 20);
  }
  cray__bigmem_trim(&m);
  CHECK_EQ(m.cached, 0);
  CHECK_EQ(m.n, 0);
  cray__bigmem_destroy(&m);
}

/* A task's arguments are counted by the threads that make and free them, lock-free
 * (store_internal.h): the stats' bytes are exact once they stop, and the budget's count
 * (`resident`) is never short of the arguments' bytes, nor over them by 2 granules for
 * each thread that counted, also with more threads than slots (they share slot 0). */
typedef struct {
  cray__store *s;
  int64_t each;
  int times;
} counter;

static void *count_run(void *arg) {
  counter *c = arg;
  for (int i = 0; i < c->times; i++) cray__store_count_bytes(c->s, c->each);
  return NULL;
}

static void count_on_threads(cray__store *s, int n, int64_t each, int times) {
  pthread_t t[NCREDITS + 8];
  counter c = {s, each, times};
  for (int i = 0; i < n; i++) pthread_create(&t[i], NULL, count_run, &c);
  for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
}

static void check_arguments(cray__store *s, uint64_t truth, int threads) {
  cray_store_stats st;
  cray__store_stats(s, &st);
  CHECK_EQ(st.bytes, truth);
  uint64_t resident = atomic_load(&s->resident);
  CHECK(resident >= truth);
  int slots = threads < NCREDITS ? threads : NCREDITS;
  CHECK(resident < truth + (uint64_t)(2 * GRANULE * slots));
}

static void test_argument_bytes_without_locks(void) {
  cray__store *s;
  CHECK_EQ(cray__store_create(&s, (uint64_t)1 << 30), 0);
  count_on_threads(s, 4, 1000, 100); /* made on four threads */
  check_arguments(s, 400000, 4);
  count_on_threads(s, 4, -1000, 100); /* freed on four others */
  check_arguments(s, 0, 8);
  count_on_threads(s, NCREDITS + 8, 100000, 1); /* past the slots */
  check_arguments(s, (uint64_t)(NCREDITS + 8) * 100000, NCREDITS + 16);
  cray__store_count_bytes(s, -(int64_t)(NCREDITS + 8) * 100000);
  check_arguments(s, 0, NCREDITS + 17);
  cray__store_destroy(s);
}

int main(void) {
  RUN(test_disk_full); /* first: it forks, best while this process has one thread */
  RUN(test_env_write_read_delete);
  RUN(test_env_chunks);
  RUN(test_env_default_dir_is_removed);
  RUN(test_env_keeps_others_files);
  RUN(test_env_refuses_unusable_dirs);
  RUN(test_env_cap);
  RUN(test_store_spills_and_restores);
  RUN(test_nested_refs_survive_spilling);
  RUN(test_inline_values_stay);
  RUN(test_pinned_and_viewed_blobs_stay);
  RUN(test_object_bigger_than_the_budget);
  RUN(test_readers_race_the_spill_thread);
  RUN(test_pin_races_a_restore);
  RUN(test_api_readers_race_a_putter);
  RUN(test_spill_space_full);
  RUN(test_view_outlives_runtime);
  RUN(test_bigmem_reuses_blocks);
  RUN(test_argument_bytes_without_locks);
  return check_done();
}
