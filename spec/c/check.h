/*
 * check.h: the C tests' assertions. Each CHECK counts a pass or prints the failing
 * expression with its place; check_done() prints "N passed, M failed" and gives the exit
 * status. Also the runtime the tests open (check_open) and the Lua drivers they run on it
 * (check_run).
 */
#ifndef CRAY_CHECK_H
#define CRAY_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../runtime/cray.h"

static int check_passed, check_failed;

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (cond) {                                                                  \
      check_passed++;                                                            \
    } else {                                                                     \
      check_failed++;                                                            \
      fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);            \
    }                                                                            \
  } while (0)

#define CHECK_EQ(a, b)                                                           \
  do {                                                                           \
    long long check_a_ = (long long)(a), check_b_ = (long long)(b);              \
    if (check_a_ == check_b_) {                                                  \
      check_passed++;                                                            \
    } else {                                                                     \
      check_failed++;                                                            \
      fprintf(stderr, "FAIL %s:%d: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, \
              #a, #b, check_a_, check_b_);                                       \
    }                                                                            \
  } while (0)

/* Runs one test function, naming it. */
#define RUN(test)             \
  do {                        \
    printf("ok %s\n", #test); \
    test();                   \
  } while (0)

/* A runtime with `workers` workers and an object store of `memory` bytes (checked to
 * open); the test closes it with cray_close. */
static inline cray_runtime *check_open(int workers, size_t memory) {
  cray_options o;
  cray_options_init(&o);
  o.workers = workers;
  o.memory = memory;
  cray_runtime *rt = NULL;
  CHECK_EQ(cray_open(&rt, &o), 0);
  return rt;
}

/* Runs Lua code as a driver on rt; returns its error (the caller frees it), or NULL. */
static inline char *check_run(cray_runtime *rt, const char *code) {
  char *err = NULL;
  if (cray_run_string(rt, code, "=driver", &err) == 0) return NULL;
  return err ? err : strdup("(no message)");
}

static inline int check_done(void) {
  printf("%d passed, %d failed\n", check_passed, check_failed);
  return check_failed ? 1 : 0;
}

#endif
