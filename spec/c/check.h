/*
 * check.h: the C tests' assertions. Each CHECK counts a pass or prints the failing
 * expression with its place; check_done() prints "N passed, M failed" and gives the exit
 * status.
 */
#ifndef CRAY_CHECK_H
#define CRAY_CHECK_H

#include <stdio.h>

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

static inline int check_done(void) {
  printf("%d passed, %d failed\n", check_passed, check_failed);
  return check_failed ? 1 : 0;
}

#endif
