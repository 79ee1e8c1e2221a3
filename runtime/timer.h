/*
 * timer.h: timers on one libuv loop in a runtime service thread.
 *
 * Any thread may add a timer; its callback runs on the service thread exactly once: when
 * it expires (CRAY__TIMER_FIRED), when it is cancelled first (CRAY__TIMER_CANCELLED), or
 * when the service stops with it still pending (CRAY__TIMER_STOPPED). Callbacks must be
 * brief and must not add or cancel timers.
 *
 * The owner of a timer cancels it exactly once, fired or not: that hands the handle back
 * (cancelling one that fired already only releases it).
 */
#ifndef CRAY_TIMER_H
#define CRAY_TIMER_H

enum { CRAY__TIMER_FIRED, CRAY__TIMER_CANCELLED, CRAY__TIMER_STOPPED };

typedef struct cray__timers cray__timers;
typedef struct cray__timer cray__timer;
typedef void (*cray__timer_fn)(void *arg, int why);

int cray__timers_start(cray__timers **out);
/* Fires every pending timer now (CRAY__TIMER_STOPPED), and timers added later at once:
 * for shutting down without waiting out sleeps. */
void cray__timers_flush(cray__timers *t);
/* Stops the service: pending timers get CRAY__TIMER_STOPPED, then the thread ends. */
void cray__timers_stop(cray__timers *t);

/* A timer calling fn(arg, why) after `delay` seconds. NULL when memory is short (fn is
 * not called then). */
cray__timer *cray__timer_add(cray__timers *t, double delay, cray__timer_fn fn, void *arg);
/* Hands the timer back; if it has not fired, its callback runs with
 * CRAY__TIMER_CANCELLED. The handle must not be used afterwards. */
void cray__timer_cancel(cray__timers *t, cray__timer *tm);
/* Runs fn(loop, arg) on the service thread, in order with the other requests, where it
 * may use the loop (a uv_loop_t) as it likes (runtime/io.c does). CRAY_ENOMEM when it
 * cannot be queued (fn is not called then). Not after cray__timers_stop began. */
typedef void (*cray__timers_call_fn)(void *loop, void *arg);
int cray__timers_call(cray__timers *t, cray__timers_call_fn fn, void *arg);
/* Timers added whose callback has not run yet. */
int cray__timers_pending(cray__timers *t);

#endif
