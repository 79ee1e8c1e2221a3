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

/* The longest stretch of time the runtime measures, in seconds (about 31 years). A wait,
 * sleep or timer of more (infinity included) never ends on its own: every conversion of
 * seconds, to a timespec's time_t or a timer's milliseconds, stays in range. */
#define CRAY__FOREVER 1e9

/* A timeout in seconds as the runtime measures it: from CRAY__FOREVER up (and NaN) it
 * becomes -1, no limit; anything else is unchanged. */
static inline double cray__timeout(double seconds) {
  return seconds < CRAY__FOREVER ? seconds : -1;
}

/* Waits until at least `want` of entries[0..n) are resolved, or `timeout` seconds pass
 * (timeout < 0 or from CRAY__FOREVER up: no limit). ready[i] is set to 1 for each
 * resolved entry, 0 otherwise.
 * Returns the number resolved (>= want unless timed out), or CRAY_ENOMEM. */
int cray__wait_entries(cray__store *s, cray__entry *const *entries, size_t n, size_t want,
                       double timeout, unsigned char *ready);

#endif
