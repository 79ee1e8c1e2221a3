/*
 * test_store.c: the object store, ids, blobs and thread waits, through the runtime's own
 * interfaces.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../../runtime/id.h"
#include "../../runtime/store.h"
#include "../../runtime/wait.h"
#include "check.h"

static cray__blob *blob_of(const char *s) {
  return cray__blob_new((const uint8_t *)s, strlen(s), 1, NULL, 0, 0);
}

static void test_insert_lookup_release(void) {
  cray__store *s;
  CHECK_EQ(cray__store_create(&s, 1000), 0);
  cray__idgen g;
  cray__id_init(&g);
  cray_id id = cray__id_new(&g);
  cray__entry *e = cray__store_insert(s, id, blob_of("hello"));
  CHECK(e != NULL);
  CHECK_EQ(cray__entry_state(e), CRAY__READY);
  cray_store_stats st;
  cray__store_stats(s, &st);
  CHECK_EQ(st.objects, 1);
  CHECK_EQ(st.bytes, 5);
  CHECK_EQ(st.budget, 1000);
  CHECK(cray__store_insert(s, id, NULL) == NULL); /* ids are unique */

  cray__entry *f = cray__store_lookup(s, &id);
  CHECK(f == e);
  cray__store_release(s, f);
  cray__store_release(s, e);
  CHECK(cray__store_lookup(s, &id) == NULL);
  cray__store_stats(s, &st);
  CHECK_EQ(st.objects, 0);
  CHECK_EQ(st.bytes, 0);
  CHECK_EQ(st.puts, 1);
  CHECK_EQ(st.frees, 1);
  cray__store_destroy(s);
}

static void test_many_entries_grow_and_free(void) {
  cray__store *s;
  cray__store_create(&s, 0);
  cray__idgen g;
  cray__id_init(&g);
  enum { N = 50000 };
  cray__entry **v = malloc(N * sizeof *v);
  for (int i = 0; i < N; i++) v[i] = cray__store_insert(s, cray__id_new(&g), blob_of("x"));
  int found = 0;
  for (int i = 0; i < N; i++) {
    cray__entry *e = cray__store_lookup(s, &v[i]->id);
    found += e == v[i];
    cray__store_release(s, e);
  }
  CHECK_EQ(found, N);
  for (int i = 0; i < N; i++) cray__store_release(s, v[i]);
  cray_store_stats st;
  cray__store_stats(s, &st);
  CHECK_EQ(st.objects, 0);
  free(v);
  cray__store_destroy(s);
}

/* Ids made here (the store's home) and ids from elsewhere with the same sequences and
 * indexes live side by side: each is found, each is unique, and freeing either leaves the
 * other. Pages of the direct map come and go as their entries do. */
static void test_direct_and_hashed_ids(void) {
  cray__store *s;
  CHECK_EQ(cray__store_create(&s, 0), 0);
  cray__idgen g;
  cray__id_init(&g);
  cray__store_set_home(s, g.nonce);
  enum { N = 3000, RETURNS = 3 };
  cray__entry **home = malloc(N * RETURNS * sizeof *home), **away = malloc(N * sizeof *away);
  for (int i = 0; i < N; i++) {
    cray_id task = cray__id_new(&g);
    for (int r = 0; r < RETURNS; r++) {
      home[i * RETURNS + r] = cray__store_insert(s, cray__id_with_index(task, r + 1), NULL);
      CHECK(home[i * RETURNS + r] != NULL);
    }
    cray_id other = {g.nonce ^ 1, task.lo | 1}; /* another rank's return 1 of that task */
    away[i] = cray__store_insert(s, other, blob_of("away"));
    CHECK(away[i] != NULL);
    CHECK(cray__store_insert(s, other, NULL) == NULL);
    CHECK(cray__store_insert(s, cray__id_with_index(task, 2), NULL) == NULL);
  }
  cray_store_stats st;
  cray__store_stats(s, &st);
  CHECK_EQ(st.objects, N * (RETURNS + 1));
  int found = 0;
  for (int i = 0; i < N * RETURNS; i++) {
    cray__entry *e = cray__store_lookup(s, &home[i]->id);
    found += e == home[i];
    if (e) cray__store_release(s, e);
  }
  CHECK_EQ(found, N * RETURNS);
  /* Every return but the middle one goes: chains lose their head and their tail. */
  for (int i = 0; i < N * RETURNS; i++)
    if (i % RETURNS != 1) cray__store_release(s, home[i]);
  found = 0;
  for (int i = 0; i < N; i++) {
    cray_id gone = cray__id_with_index(home[i * RETURNS + 1]->id, 1);
    CHECK(cray__store_lookup(s, &gone) == NULL);
    cray__entry *e = cray__store_lookup(s, &home[i * RETURNS + 1]->id);
    cray__entry *f = cray__store_lookup(s, &away[i]->id);
    found += (e == home[i * RETURNS + 1]) + (f == away[i]);
    if (e) cray__store_release(s, e);
    if (f) cray__store_release(s, f);
  }
  CHECK_EQ(found, 2 * N);
  for (int i = 0; i < N; i++) {
    cray__store_release(s, home[i * RETURNS + 1]);
    cray__store_release(s, away[i]);
  }
  cray__store_stats(s, &st);
  CHECK_EQ(st.objects, 0);
  /* The pages went with their entries; new ids find pages again. */
  cray_id again = cray__id_new(&g);
  cray__entry *e = cray__store_insert(s, again, blob_of("again"));
  CHECK(e != NULL && cray__store_lookup(s, &again) == e);
  cray__store_release(s, e);
  cray__store_release(s, e);
  free(home);
  free(away);
  cray__store_destroy(s);
}

static void test_ids(void) {
  cray__idgen g;
  cray__id_init(&g);
  cray_id a = cray__id_new(&g), b = cray__id_new(&g);
  CHECK(!cray__id_eq(&a, &b));
  CHECK_EQ(a.lo & CRAY__ID_MAX_INDEX, 0);
  cray_id r = cray__id_with_index(a, 3);
  CHECK_EQ(r.lo & CRAY__ID_MAX_INDEX, 3);
  CHECK_EQ(r.lo >> CRAY__ID_INDEX_BITS, a.lo >> CRAY__ID_INDEX_BITS);
  uint8_t raw[16];
  cray__id_store(&a, raw);
  cray_id back = cray__id_load(raw);
  CHECK(cray__id_eq(&a, &back));
  char hex[33];
  cray_id x = {0x0123456789abcdefull, 0xfedcba9876543210ull};
  cray_id_format(&x, hex);
  CHECK(strcmp(hex, "0123456789abcdeffedcba9876543210") == 0);
}

typedef struct id_job {
  cray__idgen *g;
  cray_id *out;
  int n;
} id_job;

static void *make_ids(void *p) {
  id_job *j = p;
  for (int i = 0; i < j->n; i++) j->out[i] = cray__id_new(j->g);
  return NULL;
}

static int cmp_id(const void *a, const void *b) {
  const cray_id *x = a, *y = b;
  if (x->lo != y->lo) return x->lo < y->lo ? -1 : 1;
  return x->hi < y->hi ? -1 : x->hi > y->hi;
}

static void test_ids_unique_across_threads(void) {
  cray__idgen g;
  cray__id_init(&g);
  enum { N = 20000 };
  cray_id *ids = malloc(2 * N * sizeof *ids);
  id_job a = {&g, ids, N}, b = {&g, ids + N, N};
  pthread_t t;
  pthread_create(&t, NULL, make_ids, &a);
  make_ids(&b);
  pthread_join(t, NULL);
  qsort(ids, 2 * N, sizeof *ids, cmp_id);
  int dups = 0;
  for (int i = 1; i < 2 * N; i++) dups += cray__id_eq(&ids[i - 1], &ids[i]);
  CHECK_EQ(dups, 0);
  free(ids);
}

static void test_nested_refs_keep_alive_and_free_iteratively(void) {
  cray__store *s;
  cray__store_create(&s, 0);
  cray__idgen g;
  cray__id_init(&g);
  cray__entry *inner = cray__store_insert(s, cray__id_new(&g), blob_of("inner"));
  cray__entry *prev = inner;
  enum { CHAIN = 200000 };
  for (int i = 0; i < CHAIN; i++) {
    cray__blob *b = cray__blob_new((const uint8_t *)"r", 1, 1, &prev, 1, 0);
    cray__entry *e = cray__store_insert(s, cray__id_new(&g), b);
    cray__store_release(s, prev); /* now only the blob holds prev */
    prev = e;
  }
  cray_store_stats st;
  cray__store_stats(s, &st);
  CHECK_EQ(st.objects, CHAIN + 1);
  cray__store_release(s, prev); /* frees the whole chain, without deep recursion */
  cray__store_stats(s, &st);
  CHECK_EQ(st.objects, 0);
  cray__store_destroy(s);
}

static void test_resolve_once(void) {
  cray__store *s;
  cray__store_create(&s, 0);
  cray__idgen g;
  cray__id_init(&g);
  cray__entry *e = cray__store_insert(s, cray__id_new(&g), NULL);
  CHECK_EQ(cray__entry_state(e), CRAY__PENDING);
  CHECK_EQ(cray__store_resolve(s, e, blob_of("err"), 1), 0);
  CHECK_EQ(cray__entry_state(e), CRAY__FAILED);
  cray__blob *again = blob_of("again");
  CHECK_EQ(cray__store_resolve(s, e, again, 0), CRAY_EINVAL);
  cray__blob_release(s, again);
  cray__blob *b;
  CHECK_EQ(cray__store_pin(s, e, &b), 0);
  CHECK(memcmp(b->data, "err", 3) == 0);
  cray__store_unpin(e);
  cray__store_release(s, e);
  cray__store_destroy(s);
}

static void test_wait_timeout(void) {
  cray__store *s;
  cray__store_create(&s, 0);
  cray__idgen g;
  cray__id_init(&g);
  cray__entry *e = cray__store_insert(s, cray__id_new(&g), NULL);
  unsigned char ready = 9;
  double t0 = cray__now();
  CHECK_EQ(cray__wait_entries(s, &e, 1, 1, 0.05, &ready), 0);
  double dt = cray__now() - t0;
  CHECK(dt >= 0.045 && dt < 1.0);
  CHECK_EQ(ready, 0);
  CHECK_EQ(cray__wait_entries(s, &e, 1, 1, 0, &ready), 0); /* a poll */
  CHECK(e->waiters == NULL);                               /* nothing left subscribed */
  cray__store_release(s, e);
  cray__store_destroy(s);
}

typedef struct resolver {
  cray__store *s;
  cray__entry **v;
  int n;
} resolver;

static void *resolve_later(void *p) {
  resolver *r = p;
  for (int i = 0; i < r->n; i++) {
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
    cray__store_resolve(r->s, r->v[i], blob_of("done"), 0);
  }
  return NULL;
}

static void test_wait_wakes_on_resolve(void) {
  cray__store *s;
  cray__store_create(&s, 0);
  cray__idgen g;
  cray__id_init(&g);
  enum { N = 8 };
  cray__entry *v[N];
  for (int i = 0; i < N; i++) v[i] = cray__store_insert(s, cray__id_new(&g), NULL);
  resolver r = {s, v, N};
  pthread_t t;
  pthread_create(&t, NULL, resolve_later, &r);
  unsigned char ready[N];
  int got = cray__wait_entries(s, v, N, 3, -1, ready);
  CHECK(got >= 3);
  got = cray__wait_entries(s, v, N, N, 10, ready);
  CHECK_EQ(got, N);
  for (int i = 0; i < N; i++) CHECK_EQ(ready[i], 1);
  pthread_join(t, NULL);
  for (int i = 0; i < N; i++) cray__store_release(s, v[i]);
  cray__store_destroy(s);
}

typedef struct churn {
  cray__store *s;
  cray__idgen *g;
  cray__entry *shared;
} churn;

/* Puts, looks up and frees objects while the other thread does the same, and takes and
 * drops references to one shared entry. */
static void *churn_run(void *p) {
  churn *c = p;
  for (int i = 0; i < 20000; i++) {
    cray__entry *e = cray__store_insert(c->s, cray__id_new(c->g), blob_of("v"));
    cray__entry *f = cray__store_lookup(c->s, &e->id);
    cray__store_retain(c->shared);
    cray__store_release(c->s, f);
    cray__store_release(c->s, e);
    cray__store_release(c->s, c->shared);
  }
  return NULL;
}

static void test_concurrent_churn(void) {
  cray__store *s;
  cray__store_create(&s, 0);
  cray__idgen g;
  cray__id_init(&g);
  cray__store_set_home(s, g.nonce); /* the direct map, as a runtime's store */
  cray__entry *shared = cray__store_insert(s, cray__id_new(&g), blob_of("shared"));
  churn c = {s, &g, shared};
  pthread_t t;
  pthread_create(&t, NULL, churn_run, &c);
  churn_run(&c);
  pthread_join(t, NULL);
  cray_store_stats st;
  cray__store_stats(s, &st);
  CHECK_EQ(st.objects, 1);
  CHECK_EQ(atomic_load(&shared->refs), 1);
  cray__store_release(s, shared);
  cray__store_destroy(s);
}

/* A small value lives inside its entry: read by pin like any blob, counted in the budget,
 * and a blob reference taken meanwhile (a view) keeps the bytes after the entry goes,
 * through the store's closing too. Too big a value is refused. */
static void test_inline_values(void) {
  cray__store *s;
  CHECK_EQ(cray__store_create(&s, 1000), 0);
  cray__idgen g;
  cray__id_init(&g);
  cray__store_set_home(s, g.nonce);
  uint8_t big[CRAY__INLINE_MAX + 1] = {0};
  CHECK(cray__store_insert_inline(s, cray__id_new(&g), big, sizeof big, 1, 0) == NULL);
  cray_id id = cray__id_new(&g);
  cray__entry *e = cray__store_insert_inline(s, id, (const uint8_t *)"\xa2ok", 3, 1,
                                             CRAY__BLOB_TRUSTED);
  CHECK(e != NULL);
  CHECK(cray__store_insert_inline(s, id, (const uint8_t *)"x", 1, 1, 0) == NULL);
  CHECK_EQ(cray__entry_state(e), CRAY__READY);
  cray_store_stats st;
  cray__store_stats(s, &st);
  CHECK_EQ(st.objects, 1);
  CHECK_EQ(st.bytes, 3);
  cray__blob *b;
  CHECK_EQ(cray__store_pin(s, e, &b), 0);
  CHECK_EQ(b->len, 3);
  CHECK_EQ(b->count, 1);
  CHECK_EQ(b->nrefs, 0);
  CHECK_EQ(b->flags, CRAY__BLOB_TRUSTED | CRAY__BLOB_INLINE);
  CHECK(memcmp(b->data, "\xa2ok", 3) == 0);
  CHECK_EQ((uintptr_t)b->data % 8, 0);
  cray__blob_retain(b); /* a view */
  cray__store_unpin(e);
  cray__store_release(s, e);
  CHECK(cray__store_lookup(s, &id) == NULL);
  cray__store_stats(s, &st);
  CHECK_EQ(st.objects, 0);
  CHECK_EQ(st.bytes, 0);
  CHECK(memcmp(b->data, "\xa2ok", 3) == 0); /* the view still reads it */
  cray__blob_release(s, b);

  e = cray__store_insert_inline(s, cray__id_new(&g), (const uint8_t *)"\x07", 1, 1, 0);
  CHECK_EQ(cray__store_pin(s, e, &b), 0);
  cray__blob_retain(b);
  cray__store_unpin(e);
  cray__store_destroy(s); /* with e still held: b is an orphan, kept by the view */
  CHECK_EQ(b->data[0], 7);
  cray__blob_release(NULL, b);
}

/* An inline value's bytes sit where a blob's error strings would hang: one that starts as
 * an error object does (ext 5) is read as none, and nothing is freed for it. */
static void test_inline_value_is_no_error(void) {
  cray__store *s;
  CHECK_EQ(cray__store_create(&s, 1000), 0);
  cray__idgen g;
  cray__id_init(&g);
  cray__store_set_home(s, g.nonce);
  cray__entry *e =
      cray__store_insert_inline(s, cray__id_new(&g), (const uint8_t *)"\xd4\x05\x80", 3, 1, 0);
  cray__blob *b;
  CHECK_EQ(cray__store_pin(s, e, &b), 0);
  cray_view v = {b->data, b->len, 1, b};
  cray_error err;
  CHECK_EQ(cray_error_info(&v, &err), CRAY_EINVAL);
  cray__store_unpin(e);
  cray__store_release(s, e);
  cray__store_destroy(s);
}

int main(void) {
  RUN(test_insert_lookup_release);
  RUN(test_many_entries_grow_and_free);
  RUN(test_direct_and_hashed_ids);
  RUN(test_ids);
  RUN(test_ids_unique_across_threads);
  RUN(test_nested_refs_keep_alive_and_free_iteratively);
  RUN(test_resolve_once);
  RUN(test_wait_timeout);
  RUN(test_wait_wakes_on_resolve);
  RUN(test_concurrent_churn);
  RUN(test_inline_values);
  RUN(test_inline_value_is_no_error);
  return check_done();
}
