/*
 * ceiling.c: the machine's own ceilings, measured in the same `make bench` as cray's
 * figures so that each of those reads as a ratio (docs/performance.md).
 *
 *   ceiling_memcpy_gb_per_second  one thread copying 256 MiB between two buffers whose
 *                                 pages are mapped already: the copy bandwidth a put of a
 *                                 large value could reach.
 *   ceiling_handoff_per_second    one thread hands small items (one word each) to another
 *                                 through a bounded queue under one mutex, with one
 *                                 condition variable each way: each push and each pop
 *                                 takes the lock once, and a side signals only when the
 *                                 other sleeps. The threads are pinned to two cores. What
 *                                 any call from one core to another pays at least.
 *
 * The protocol is bench/lib.lua's, so the lines mean the same: a warm-up that doubles n
 * and sizes the runs, CRAY_BENCH_RUNS timed runs (default 5, quick 3), the median on
 * stdout as "<metric> <value> <unit>", every run on stderr; CRAY_BENCH_QUICK=1 makes it
 * tiny (checks it runs), CRAY_BENCH_FILTER picks metrics by substring.
 */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

typedef double run_fn(void *ctx, uint64_t n); /* does n operations, returns seconds */

static bench_settings set;
static double warm = 0.5, run_time = 1.0;

/* Warms up, times `runs` calls of run(n) and prints the median of per_op * n / seconds. */
static void rate(const char *name, const char *unit, const char *fmt, double per_op,
                 run_fn *run, void *ctx) {
  if (!strstr(name, set.filter)) return;
  uint64_t n = 1, ops = 0;
  double spent = 0;
  for (;;) {
    spent += run(ctx, n);
    ops += n;
    if (spent >= warm) break;
    n *= 2;
  }
  n = (uint64_t)((double)ops / spent * run_time);
  if (n < 1) n = 1;
  double v[BENCH_MAX_RUNS];
  fprintf(stderr, "  %-46s", name);
  for (int i = 0; i < set.runs; i++) {
    v[i] = per_op * (double)n / run(ctx, n);
    fprintf(stderr, " %.4g", v[i]);
  }
  double m = bench_median(v, set.runs);
  fprintf(stderr, " -> %.4g %s (%llu ops a run)\n", m, unit, (unsigned long long)n);
  bench_report(name, unit, fmt, m);
}

/* ---- memcpy ---- */

typedef struct copy {
  unsigned char *src, *dst;
  size_t len;
} copy;

static double run_copy(void *ctx, uint64_t n) {
  copy *c = ctx;
  double t0 = bench_now();
  for (uint64_t i = 0; i < n; i++) {
    memcpy(c->dst, c->src, c->len);
    __asm__ __volatile__("" : : "r"(c->dst) : "memory"); /* the copy is used */
  }
  return bench_now() - t0;
}

/* ---- handoff ---- */

#define QCAP 1024

typedef struct queue {
  pthread_mutex_t mu;
  pthread_cond_t not_empty, not_full;
  uintptr_t items[QCAP];
  size_t head, count;
  int consumer_sleeps, producer_sleeps;
  uint64_t n;   /* items to hand over in this run */
  uint64_t sum; /* what the consumer received, checked by the producer */
} queue;

/* The two CPUs the handoff's sides run on: the first two this process may use, or -1 when
 * it may use only one. Left to the scheduler, the two threads sometimes share one core,
 * and the queue then fills and drains in batches without the cross-core traffic that the
 * figure is about. */
static int cpus[2] = {-1, -1};

static void find_cpus(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0 || CPU_COUNT(&set) < 2) return;
  for (int cpu = 0, k = 0; k < 2 && cpu < CPU_SETSIZE; cpu++)
    if (CPU_ISSET(cpu, &set)) cpus[k++] = cpu;
}

static void pin(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *consume(void *arg) {
  queue *q = arg;
  pin(cpus[1]);
  uint64_t sum = 0;
  for (uint64_t i = 0; i < q->n; i++) {
    pthread_mutex_lock(&q->mu);
    while (q->count == 0) {
      q->consumer_sleeps = 1;
      pthread_cond_wait(&q->not_empty, &q->mu);
    }
    q->consumer_sleeps = 0;
    sum += q->items[q->head];
    q->head = (q->head + 1) % QCAP;
    q->count--;
    if (q->producer_sleeps) pthread_cond_signal(&q->not_full);
    pthread_mutex_unlock(&q->mu);
  }
  q->sum = sum;
  return NULL;
}

static double run_handoff(void *ctx, uint64_t n) {
  queue *q = ctx;
  q->n = n;
  q->head = q->count = 0;
  q->consumer_sleeps = q->producer_sleeps = 0;
  pin(cpus[0]);
  double t0 = bench_now();
  pthread_t consumer;
  if (pthread_create(&consumer, NULL, consume, q) != 0) {
    perror("ceiling: pthread_create");
    exit(1);
  }
  for (uint64_t i = 1; i <= n; i++) {
    pthread_mutex_lock(&q->mu);
    while (q->count == QCAP) {
      q->producer_sleeps = 1;
      pthread_cond_wait(&q->not_full, &q->mu);
    }
    q->producer_sleeps = 0;
    q->items[(q->head + q->count) % QCAP] = (uintptr_t)i;
    q->count++;
    if (q->consumer_sleeps) pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
  }
  pthread_join(consumer, NULL);
  double dt = bench_now() - t0;
  if (q->sum != n * (n + 1) / 2) {
    fprintf(stderr, "ceiling: handoff lost items\n");
    exit(1);
  }
  return dt;
}

int main(void) {
  set = bench_settings_read();
  int quick = set.quick;
  if (quick) warm = 0.001, run_time = 0.002;

  copy c = {.len = quick ? (size_t)1 << 20 : (size_t)256 << 20};
  c.src = malloc(c.len);
  c.dst = malloc(c.len);
  if (!c.src || !c.dst) {
    fprintf(stderr, "ceiling: no memory for two %zu-byte buffers\n", c.len);
    return 1;
  }
  /* Map every page before the clock starts; with non-zero bytes, which the compiler
   * cannot turn into a calloc that maps nothing. */
  memset(c.src, 1, c.len);
  memset(c.dst, 2, c.len);
  rate("ceiling_memcpy_gb_per_second", "gb_per_second", "%.3f", (double)c.len / 1e9, run_copy,
       &c);
  free(c.src);
  free(c.dst);

  find_cpus();
  static queue q;
  pthread_mutex_init(&q.mu, NULL);
  pthread_cond_init(&q.not_empty, NULL);
  pthread_cond_init(&q.not_full, NULL);
  rate("ceiling_handoff_per_second", "per_second", "%.0f", 1, run_handoff, &q);
  return 0;
}
