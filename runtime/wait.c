/*
 * wait.c: see wait.h. The waiter's count is guarded by its own mutex; wakes arrive under
 * a shard lock (store.h), and after unsubscribing from every entry no wake can still be
 * running, so the waiter can live on the caller's stack. Only the wake that completes the
 * wait signals the sleeper, so waiting for 1,000 entries costs one wake-up, not 1,000.
 */
#include "wait.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <time.h>

#include "alloc.h"

typedef struct thread_waiter {
  cray__waiter base;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  size_t fired;
  size_t need; /* wakes that end the wait: until it is known, SIZE_MAX */
} thread_waiter;

double cray__now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void thread_wake(cray__waiter *w) {
  thread_waiter *t = (thread_waiter *)w;
  pthread_mutex_lock(&t->mu);
  if (++t->fired >= t->need) pthread_cond_signal(&t->cv);
  pthread_mutex_unlock(&t->mu);
}

/* Watches e for up to SPIN_SECONDS (less when the timeout is shorter): a task that is
 * already running often finishes sooner than a sleeping thread could be woken. Returns 1
 * when e resolved. */
#define SPIN_SECONDS 20e-6
static int spin_until_ready(const cray__entry *e, double timeout) {
  double end = cray__now() + (timeout >= 0 && timeout < SPIN_SECONDS ? timeout : SPIN_SECONDS);
  do {
    for (int i = 0; i < 64; i++) {
      if (cray__entry_state(e) != CRAY__PENDING) return 1;
      cray__cpu_relax();
    }
    sched_yield(); /* the task's worker may be waiting for this core */
  } while (cray__now() < end);
  return 0;
}

static size_t count_ready(cray__entry *const *entries, size_t n, unsigned char *ready) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    ready[i] = cray__entry_state(entries[i]) != CRAY__PENDING;
    k += ready[i];
  }
  return k;
}

int cray__wait_entries(cray__store *s, cray__entry *const *entries, size_t n, size_t want,
                       double timeout, unsigned char *ready) {
  timeout = cray__timeout(timeout);
  size_t have = count_ready(entries, n, ready);
  if (have < want && timeout == 0)
    for (size_t i = 0; i < n; i++)
      if (!ready[i]) cray__store_want(s, entries[i]); /* another rank's: asked for now */
  if (have >= want || timeout == 0) return (int)have;
  if (n == 1 && spin_until_ready(entries[0], timeout)) return (int)count_ready(entries, n, ready);

  cray__waitnode one, *nodes = n == 1 ? &one : cray__malloc(n * sizeof *nodes);
  if (!nodes) return CRAY_ENOMEM;
  thread_waiter t = {.base = {thread_wake}, .fired = 0, .need = SIZE_MAX};
  pthread_mutex_init(&t.mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&t.cv, &ca);
  pthread_condattr_destroy(&ca);

  size_t subscribed = 0;
  for (size_t i = 0; i < n; i++) {
    nodes[i].waiter = &t.base;
    if (ready[i]) continue;
    if (cray__store_subscribe(s, entries[i], &nodes[i]) == 0) subscribed++;
    else have++, ready[i] = 1;
  }

  struct timespec until = {0, 0};
  if (timeout > 0) {
    double end = cray__now() + timeout;
    until.tv_sec = (time_t)end;
    until.tv_nsec = (long)((end - floor(end)) * 1e9);
  }
  pthread_mutex_lock(&t.mu);
  t.need = have >= want ? 0 : want - have;
  while (t.fired < t.need) {
    if (timeout < 0) {
      pthread_cond_wait(&t.cv, &t.mu);
    } else if (pthread_cond_timedwait(&t.cv, &t.mu, &until) != 0) {
      break;
    }
  }
  pthread_mutex_unlock(&t.mu);

  if (subscribed) {
    for (size_t i = 0; i < n; i++)
      if (!ready[i]) cray__store_unsubscribe(s, entries[i], &nodes[i]);
  }
  if (nodes != &one) cray__free(nodes);
  pthread_cond_destroy(&t.cv);
  pthread_mutex_destroy(&t.mu);
  return (int)count_ready(entries, n, ready);
}
