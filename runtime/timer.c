/*
 * timer.c: see timer.h.
 *
 * Requests (add, cancel, stop) go on a list under `mu` and an async handle wakes the loop,
 * which takes the whole list and applies it; so only the service thread touches libuv.
 * A cancel may cross its timer's expiry: `done` makes sure each callback runs once, and a
 * timer is freed only when its uv handle is closed and its owner has cancelled it (both
 * flags are the loop thread's).
 */
#include "timer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "alloc.h"
#include "cray.h"
#include "wait.h"

enum { REQ_ADD, REQ_CANCEL, REQ_FLUSH, REQ_CALL };

struct cray__timer {
  uv_timer_t uv;
  cray__timer_fn fn;
  void *arg;
  double delay;
  int done;      /* the callback ran */
  int closed;    /* the uv handle is closed */
  int released;  /* the owner cancelled it */
  struct cray__timer *prev, *next_live; /* live list, loop thread only */
};

typedef struct request {
  int kind;
  cray__timer *tm;
  cray__timers_call_fn fn; /* REQ_CALL */
  void *arg;
  struct request *next;
} request;

struct cray__timers {
  uv_loop_t loop;
  uv_async_t async;
  pthread_t thread;
  pthread_mutex_t mu;
  request *reqs;
  int stopping;
  int flushing; /* loop thread */
  cray__timer *live;
  _Atomic int pending; /* added and not finished */
};

static void free_if_unused(cray__timer *tm) {
  if (tm->closed && tm->released) cray__free(tm);
}

static void on_closed(uv_handle_t *h) {
  cray__timer *tm = h->data;
  tm->closed = 1;
  free_if_unused(tm);
}

static void unlink_live(cray__timers *t, cray__timer *tm) {
  if (tm->prev) tm->prev->next_live = tm->next_live;
  else t->live = tm->next_live;
  if (tm->next_live) tm->next_live->prev = tm->prev;
}

static void finish(cray__timers *t, cray__timer *tm, int why) {
  if (tm->done) return;
  tm->done = 1;
  tm->fn(tm->arg, why);
  atomic_fetch_sub_explicit(&t->pending, 1, memory_order_seq_cst); /* see cray__timers_pending */
  unlink_live(t, tm);
  uv_timer_stop(&tm->uv);
  uv_close((uv_handle_t *)&tm->uv, on_closed);
}

static void expired(uv_timer_t *h) {
  cray__timer *tm = h->data;
  finish(h->loop->data, tm, CRAY__TIMER_FIRED);
}

static void on_requests(uv_async_t *a) {
  cray__timers *t = a->data;
  pthread_mutex_lock(&t->mu);
  request *r = t->reqs;
  t->reqs = NULL;
  int stopping = t->stopping;
  pthread_mutex_unlock(&t->mu);
  /* The list is newest first; apply in order so a cancel follows its add. */
  request *ordered = NULL;
  while (r) {
    request *next = r->next;
    r->next = ordered;
    ordered = r;
    r = next;
  }
  for (r = ordered; r; r = ordered) {
    ordered = r->next;
    cray__timer *tm = r->tm;
    if (r->kind == REQ_CALL) {
      r->fn(&t->loop, r->arg);
    } else if (r->kind == REQ_FLUSH) {
      t->flushing = 1;
      while (t->live) finish(t, t->live, CRAY__TIMER_STOPPED);
    } else if (r->kind == REQ_ADD) {
      uv_timer_init(&t->loop, &tm->uv);
      tm->uv.data = tm;
      tm->prev = NULL;
      tm->next_live = t->live;
      if (t->live) t->live->prev = tm;
      t->live = tm;
      double ms = t->flushing ? 0 : tm->delay * 1000.0;
      uv_timer_start(&tm->uv, expired, ms < 0 ? 0 : (uint64_t)(ms + 0.999), 0);
    } else {
      finish(t, tm, CRAY__TIMER_CANCELLED);
      tm->released = 1;
      free_if_unused(tm);
    }
    cray__free(r);
  }
  if (stopping) {
    /* No owner cancels after the service stops: the loop releases what is left. */
    for (cray__timer *tm = t->live; tm; tm = tm->next_live) tm->released = 1;
    while (t->live) finish(t, t->live, CRAY__TIMER_STOPPED);
    uv_close((uv_handle_t *)&t->async, NULL);
  }
}

static void *run(void *arg) {
  cray__timers *t = arg;
  uv_run(&t->loop, UV_RUN_DEFAULT);
  cray__thread_done(); /* tasks released by timers leave their memory here */
  return NULL;
}

int cray__timers_start(cray__timers **out) {
  cray__timers *t = cray__calloc(1, sizeof *t);
  if (!t) return CRAY_ENOMEM;
  if (uv_loop_init(&t->loop) != 0) {
    cray__free(t);
    return CRAY_ESYS;
  }
  t->loop.data = t;
  uv_async_init(&t->loop, &t->async, on_requests);
  t->async.data = t;
  pthread_mutex_init(&t->mu, NULL);
  if (cray__thread_start(&t->thread, run, t) != 0) {
    uv_close((uv_handle_t *)&t->async, NULL);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    uv_loop_close(&t->loop);
    pthread_mutex_destroy(&t->mu);
    cray__free(t);
    return CRAY_ESYS;
  }
  *out = t;
  return 0;
}

static int post_call(cray__timers *t, int kind, cray__timer *tm, cray__timers_call_fn fn,
                     void *arg) {
  request *r = cray__malloc(sizeof *r);
  if (!r) return CRAY_ENOMEM;
  r->kind = kind;
  r->tm = tm;
  r->fn = fn;
  r->arg = arg;
  pthread_mutex_lock(&t->mu);
  r->next = t->reqs;
  t->reqs = r;
  pthread_mutex_unlock(&t->mu);
  uv_async_send(&t->async);
  return 0;
}

static int post(cray__timers *t, int kind, cray__timer *tm) {
  return post_call(t, kind, tm, NULL, NULL);
}

cray__timer *cray__timer_add(cray__timers *t, double delay, cray__timer_fn fn, void *arg) {
  cray__timer *tm = cray__calloc(1, sizeof *tm);
  if (!tm) return NULL;
  tm->fn = fn;
  tm->arg = arg;
  tm->delay = delay < CRAY__FOREVER ? delay : CRAY__FOREVER; /* NaN too */
  atomic_fetch_add_explicit(&t->pending, 1, memory_order_seq_cst); /* see cray__timers_pending */
  if (post(t, REQ_ADD, tm) != 0) {
    atomic_fetch_sub_explicit(&t->pending, 1, memory_order_seq_cst);
    cray__free(tm);
    return NULL;
  }
  return tm;
}

int cray__timers_call(cray__timers *t, cray__timers_call_fn fn, void *arg) {
  return post_call(t, REQ_CALL, NULL, fn, arg);
}

void cray__timer_cancel(cray__timers *t, cray__timer *tm) { post(t, REQ_CANCEL, tm); }

/* seq_cst, as every change of `pending`: the deadlock check reads it to say no timer can
 * wake anything, and must not miss one added before the task it wakes suspended. */
int cray__timers_pending(cray__timers *t) {
  return atomic_load_explicit(&t->pending, memory_order_seq_cst);
}

void cray__timers_flush(cray__timers *t) { post(t, REQ_FLUSH, NULL); }

void cray__timers_stop(cray__timers *t) {
  pthread_mutex_lock(&t->mu);
  t->stopping = 1;
  pthread_mutex_unlock(&t->mu);
  uv_async_send(&t->async);
  pthread_join(t->thread, NULL);
  uv_loop_close(&t->loop);
  pthread_mutex_destroy(&t->mu);
  cray__free(t);
}
