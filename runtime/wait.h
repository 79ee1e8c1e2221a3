/*
 * wait.h: blocking a thread until store entries resolve.
 *
 * A thread waiter is a store waiter backed by a mutex and a condition variable on the
 * monotonic clock. cray__wait_entries subscribes one to each pending entry, sleeps until
 * enough resolve or the deadline passes, then unsubscribes from the rest. A wait for a
 * single entry first watches it for a few microseconds, which is how long a short task
 * takes from submission to result when a worker is awake. Coroutines in worker states
 * wait through the scheduler instead and never block their thread.
 */
#ifndef CRAY_WAIT_H
#define CRAY_WAIT_H

#include <stddef.h>

#include "store.h"

/* Tells the CPU that the caller spins (waits in a loop without sleeping). */
static inline void cray__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

/* Seconds on the monotonic clock. */
double cray__now(void);

/* Waits until at least `want` of entries[0..n) are resolved, or `timeout` seconds pass
 * (timeout < 0: no limit). ready[i] is set to 1 for each resolved entry, 0 otherwise.
 * Returns the number resolved (>= want unless timed out), or CRAY_ENOMEM. */
int cray__wait_entries(cray__store *s, cray__entry *const *entries, size_t n, size_t want,
                       double timeout, unsigned char *ready);

#endif
