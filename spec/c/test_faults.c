/*
 * test_faults.c: failures the runtime must survive, forced: a worker whose state cannot
 * be made, a worker thread that cannot be started, a spill directory whose name cannot
 * be copied. This file defines every function and variable of runtime/alloc.c itself, so
 * the linker takes them instead of the library's, and it wraps pthread_create: both fail
 * on request.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../runtime/alloc.h"
#include "../../runtime/cray.h"
#include "check.h"

/* ---- the failures on request ---- */

static _Thread_local int main_thread; /* set in main */
static _Thread_local int callocs;     /* this thread's calls of cray__calloc */
static _Atomic int fail_first_calloc; /* of each thread but main's */
static const char *_Atomic fail_strdup_prefix; /* strdup of a string that starts so */
static _Atomic int strdup_skip;       /* ...after this many of them */
static _Atomic int thread_countdown;  /* pthread_create fails when it reaches 0 */

int cray__prefetchw; /* 0: cray__prefetch_write is the compiler's prefetch */

void *cray__malloc(size_t n) { return malloc(n ? n : 1); }

void *cray__calloc(size_t count, size_t n) {
  if (!main_thread && callocs++ == 0 && atomic_load(&fail_first_calloc)) return NULL;
  return calloc(count ? count : 1, n ? n : 1);
}

void *cray__realloc(void *p, size_t n) { return realloc(p, n ? n : 1); }

void cray__free(void *p) { free(p); }

void *cray__calloc_lines(size_t count, size_t n) {
  size_t size = ((count ? count : 1) * (n ? n : 1) + CRAY__LINE - 1) / CRAY__LINE * CRAY__LINE;
  void *p = aligned_alloc(CRAY__LINE, size);
  if (p) memset(p, 0, size);
  return p;
}

char *cray__strdup(const char *s) {
  const char *prefix = atomic_load(&fail_strdup_prefix);
  if (prefix && strncmp(s, prefix, strlen(prefix)) == 0 && atomic_fetch_sub(&strdup_skip, 1) <= 0)
    return NULL;
  return strdup(s);
}

void *cray__small_alloc(void) { return malloc(CRAY__SMALL); }
void cray__small_free(void *p) { free(p); }
void cray__thread_done(void) {}
int cray__thread_start(pthread_t *t, void *(*fn)(void *), void *arg) {
  return pthread_create(t, NULL, fn, arg) ? CRAY_ESYS : 0;
}

int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg) {
  static int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
  if (!real) *(void **)&real = dlsym(RTLD_NEXT, "pthread_create");
  if (atomic_fetch_sub(&thread_countdown, 1) == 1) return 11; /* EAGAIN */
  return real(t, attr, fn, arg);
}

/* ---- the tests ---- */

/* Neither worker can make its Lua state: tasks and actor calls fail, saying why. An
 * actor's init fails, so the actor dies; an actor without an init call (runtime/actor.h)
 * has its first call fail instead. */
static void test_worker_without_state(void) {
  cray_runtime *rt = check_open(2, 8 << 20);
  atomic_store(&fail_first_calloc, 1);
  char *err = check_run(rt,
                  "local f = cray.remote(function() return 1 end)\n"
                  "local ok, e = pcall(cray.get, f.remote())\n"
                  "assert(not ok and e.kind == 'out_of_memory', tostring(e))\n"
                  "assert(e.message:find('has no state to run it in'), e.message)\n"
                  "local a = cray.actor({init = function() end, get = function() return 1 end})"
                  ".remote()\n"
                  "ok, e = pcall(cray.get, a.get.remote())\n"
                  "assert(not ok and e.kind == 'actor_died', tostring(e))\n"
                  "assert(e.cause.message:find('has no state to run it in'), e.cause.message)\n"
                  "local b = cray.actor({get = function() return 1 end}).remote()\n"
                  "ok, e = pcall(cray.get, b.get.remote())\n"
                  "assert(not ok and e.kind == 'out_of_memory', tostring(e))\n"
                  "assert(e.message:find('has no state to run it in'), e.message)\n");
  atomic_store(&fail_first_calloc, 0);
  CHECK(err == NULL);
  if (err) fprintf(stderr, "%s\n", err);
  free(err);
  cray_close(rt);
}

/* The second worker thread cannot start: the first is joined, the driver is told, and a
 * later try starts them all. */
static void test_worker_thread_cannot_start(void) {
  cray_runtime *rt = check_open(2, 8 << 20);
  atomic_store(&thread_countdown, 3); /* the timer thread, worker 0, then worker 1 fails */
  char *err = check_run(rt, "cray.get(cray.remote(function() return 1 end).remote())");
  CHECK(err && strstr(err, "could not start its worker threads"));
  free(err);
  atomic_store(&thread_countdown, 0);
  err = check_run(rt, "assert(cray.get(cray.remote(function() return 7 end).remote()) == 7)");
  CHECK(err == NULL);
  free(err);
  cray_close(rt);
}

/* cray_open makes a missing spill directory; when it cannot keep its name, it removes
 * the directory again. */
static void test_spill_dir_name_cannot_be_copied(void) {
  char dir[64];
  snprintf(dir, sizeof dir, "/tmp/cray-faults-%ld", (long)getpid());
  cray_options o;
  cray_options_init(&o);
  o.workers = 1;
  o.memory = 8 << 20;
  o.spill_dir = dir;
  atomic_store(&strdup_skip, 1); /* the options' own copy goes through */
  atomic_store(&fail_strdup_prefix, dir);
  cray_runtime *rt = NULL;
  CHECK_EQ(cray_open(&rt, &o), CRAY_ENOMEM);
  atomic_store(&fail_strdup_prefix, NULL);
  CHECK(rt == NULL);
  struct stat st;
  CHECK(stat(dir, &st) != 0); /* nothing left behind */
  rmdir(dir);
}

int main(void) {
  main_thread = 1;
  RUN(test_worker_without_state);
  RUN(test_worker_thread_cannot_start);
  RUN(test_spill_dir_name_cannot_be_copied);
  return check_done();
}
