/*
 * bench.h: what the C benchmarks (ceiling.c, io_echo.c) share: the monotonic clock, the
 * median of a metric's runs and the line that reports it, and the settings they read from
 * the environment (CRAY_BENCH_QUICK, CRAY_BENCH_RUNS, CRAY_BENCH_FILTER).
 */
#ifndef CRAY_BENCH_H
#define CRAY_BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_MAX_RUNS 64

static inline double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline int bench_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The median of v[0..n) (sorts v). */
static inline double bench_median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Prints "<name> <value> <unit>" on stdout, value in fmt, at once. */
static inline void bench_report(const char *name, const char *unit, const char *fmt, double v) {
  printf("%s ", name);
  printf(fmt, v);
  printf(" %s\n", unit);
  fflush(stdout);
}

typedef struct bench_settings {
  int quick;          /* CRAY_BENCH_QUICK=1: tiny workloads */
  int runs;           /* CRAY_BENCH_RUNS (default 5, quick 3), from 3 to BENCH_MAX_RUNS */
  const char *filter; /* CRAY_BENCH_FILTER: only metrics whose name holds it ("": all) */
} bench_settings;

static inline bench_settings bench_settings_read(void) {
  const char *q = getenv("CRAY_BENCH_QUICK"), *r = getenv("CRAY_BENCH_RUNS"),
             *f = getenv("CRAY_BENCH_FILTER");
  bench_settings s = {.quick = q && strcmp(q, "1") == 0, .filter = f ? f : ""};
  s.runs = r && atoi(r) > 0 ? atoi(r) : s.quick ? 3 : 5;
  s.runs = s.runs < 3 ? 3 : s.runs > BENCH_MAX_RUNS ? BENCH_MAX_RUNS : s.runs;
  return s;
}

#endif
