/*
 * io.c: see io.h.
 *
 * The service has its own uv_async_t and request queue on the timers' loop (set up there
 * through cray__timers_call), so submitting an op never allocates: ops queue intrusively
 * under `qmu`, and the loop starts them in the order submitted. Started ops sit on a live
 * list (loop thread only) until completed: the runtime's stop wakes their tasks, then
 * aborts them and waits until none is left and every uv handle of the service is closed.
 *
 * Handles live in a chained hash table under `mu` that holds no reference: the last
 * release takes a handle out of it, under the same lock that look-ups retain under. The
 * epoll set names sockets by id, so the loop finds a handle only while it lives. Watchers
 * (poll ops armed on a handle) are not on the live list: they finish on whichever thread
 * takes them from their handle (the loop when the socket is ready, a closer with
 * UV_ECANCELED), and once the service stops no one is woken.
 */
#include "io.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "sched.h"
#include "wait.h"

struct cray__io {
  cray__timers *timers;
  struct cray__sched *s;
  cray__store *store;
  uv_async_t async;
  pthread_mutex_t qmu;           /* the request queue */
  cray__io_op *qhead;            /* newest first */
  int stop_asked;                /* under qmu */
  _Atomic int pending;           /* submitted, not completed */

  pthread_mutex_t mu;            /* the handle table, owners and users */
  cray__io_handle **buckets;
  size_t nbuckets;
  _Atomic size_t nhandles;       /* written under mu; read without it by no_handles */
  uint64_t next_id;

  int epfd;                      /* the sockets' readiness, armed one-shot by their waiters */
  uv_poll_t epoll;               /* the loop's watch on epfd */

  /* loop thread */
  cray__io_op *live;
  int open_uv;                   /* uv handles of the service not closed yet */
  _Atomic int stopping;          /* written by the loop thread only */
  int flushed;

  pthread_mutex_t stop_mu;       /* the start and stop handshakes */
  pthread_cond_t stop_cv;
  int ready, stopped;
};

/* ---- ops ---- */

cray__io_op *cray__io_op_new(cray__io *io, size_t size, cray__io_start_fn start,
                             cray__io_free_fn free_fn, cray__io_abort_fn abort) {
  cray__io_op *op = cray__calloc(1, size);
  if (!op) return NULL;
  op->io = io;
  op->start = start;
  op->free_fn = free_fn;
  op->abort = abort;
  atomic_init(&op->rc, 1);
  pthread_mutex_init(&op->mu, NULL);
  pthread_cond_init(&op->cv, NULL);
  return op;
}

void cray__io_op_release(cray__io_op *op) {
  /* acq_rel: the last release sees every write made before the others'. */
  if (atomic_fetch_sub_explicit(&op->rc, 1, memory_order_acq_rel) != 1) return;
  if (op->free_fn) op->free_fn(op);
  pthread_mutex_destroy(&op->mu);
  pthread_cond_destroy(&op->cv);
  cray__free(op);
}

static void signal_stopped(cray__io *io) {
  pthread_mutex_lock(&io->stop_mu);
  io->stopped = 1;
  pthread_cond_broadcast(&io->stop_cv);
  pthread_mutex_unlock(&io->stop_mu);
}

/* On the loop thread, once stopping: done when no op and no uv handle is left. */
static void maybe_stopped(cray__io *io) {
  if (atomic_load_explicit(&io->stopping, memory_order_relaxed) && !io->live && io->open_uv == 0)
    signal_stopped(io);
}

/* Any thread: op is over. Wakes its waiter (but after the workers stopped) and drops the
 * reference the loop or a watch held. */
static void finish(cray__io_op *op, int result) {
  cray__io *io = op->io;
  op->result = result;
  cray__task *t = op->task;
  op->task = NULL;
  if (t) {
    atomic_store_explicit(&op->done, 1, memory_order_release); /* publishes result */
    /* relaxed: set on the loop thread, which is the only one finishing ops by then */
    if (!atomic_load_explicit(&io->stopping, memory_order_relaxed)) cray__sched_wake(io->s, t);
    cray__task_release(io->store, t);
  } else {
    pthread_mutex_lock(&op->mu);
    atomic_store_explicit(&op->done, 1, memory_order_release); /* publishes result */
    pthread_cond_broadcast(&op->cv);
    pthread_mutex_unlock(&op->mu);
  }
  atomic_fetch_sub_explicit(&io->pending, 1, memory_order_relaxed); /* a count only */
  cray__io_op_release(op);
}

void cray__io_complete(cray__io_op *op, int result) {
  cray__io *io = op->io;
  if (op->prev_live) op->prev_live->next_live = op->next_live;
  else io->live = op->next_live;
  if (op->next_live) op->next_live->prev_live = op->prev_live;
  finish(op, result);
  maybe_stopped(io);
}

int cray__io_op_wait(cray__io_op *op, double deadline) {
  pthread_mutex_lock(&op->mu);
  while (!atomic_load_explicit(&op->done, memory_order_acquire)) {
    if (deadline < 0) {
      pthread_cond_wait(&op->cv, &op->mu);
      continue;
    }
    double left = deadline - cray__now();
    if (left <= 0) break;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double end = (double)ts.tv_sec + ts.tv_nsec * 1e-9 + left;
    ts.tv_sec = (time_t)end;
    ts.tv_nsec = (long)((end - floor(end)) * 1e9);
    pthread_cond_timedwait(&op->cv, &op->mu, &ts);
  }
  int done = atomic_load_explicit(&op->done, memory_order_acquire);
  pthread_mutex_unlock(&op->mu);
  return done;
}

void cray__io_submit(cray__io_op *op, cray__task *t) {
  cray__io *io = op->io;
  op->task = t;
  if (t) cray__task_retain(t);
  /* relaxed: the queue's lock orders the op's fields for the loop. */
  atomic_fetch_add_explicit(&op->rc, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&io->pending, 1, memory_order_relaxed); /* a count only */
  pthread_mutex_lock(&io->qmu);
  op->next = io->qhead;
  io->qhead = op;
  pthread_mutex_unlock(&io->qmu);
  uv_async_send(&io->async);
}

int cray__io_pending(cray__io *io) {
  return atomic_load_explicit(&io->pending, memory_order_relaxed); /* a hint for a check */
}

/* ---- the loop's side ---- */

static void start_op(cray__io *io, uv_loop_t *loop, cray__io_op *op) {
  op->prev_live = NULL;
  op->next_live = io->live;
  if (io->live) io->live->prev_live = op;
  io->live = op;
  if (atomic_load_explicit(&io->stopping, memory_order_relaxed)) {
    cray__io_complete(op, UV_ECANCELED);
    return;
  }
  op->start(io, loop, op);
}

static void on_async_closed(uv_handle_t *h) {
  cray__io *io = h->data;
  io->open_uv--;
  maybe_stopped(io);
}

static void close_all_handles(cray__io *io);
static void wake_watchers(cray__io *io);
static void on_epoll(uv_poll_t *p, int status, int events);

static void on_requests(uv_async_t *a) {
  cray__io *io = a->data;
  pthread_mutex_lock(&io->qmu);
  cray__io_op *r = io->qhead;
  io->qhead = NULL;
  int stop = io->stop_asked;
  pthread_mutex_unlock(&io->qmu);
  cray__io_op *ordered = NULL; /* the queue is newest first */
  while (r) {
    cray__io_op *next = r->next;
    r->next = ordered;
    ordered = r;
    r = next;
  }
  while ((r = ordered)) {
    ordered = r->next;
    start_op(io, a->loop, r);
  }
  if (stop == 1 && !io->flushed) {
    io->flushed = 1;
    /* Wake every waiting task: the runtime stops, they fail as cancelled. */
    for (cray__io_op *op = io->live; op; op = op->next_live)
      if (op->task) cray__sched_wake(io->s, op->task);
    wake_watchers(io);
  } else if (stop == 2 && !atomic_load_explicit(&io->stopping, memory_order_relaxed)) {
    /* The workers are gone: nobody is woken any more, everything open closes. */
    atomic_store_explicit(&io->stopping, 1, memory_order_relaxed); /* read by finish */
    close_all_handles(io);
    for (cray__io_op *op = io->live, *next; op; op = next) {
      next = op->next_live;
      if (op->abort) op->abort(op);
    }
    uv_close((uv_handle_t *)&io->async, on_async_closed);
    uv_close((uv_handle_t *)&io->epoll, on_async_closed);
    maybe_stopped(io);
  }
}

typedef struct start_args {
  cray__io *io;
  int rc;
} start_args;

static void init_on_loop(void *loop, void *arg) {
  cray__io *io = arg;
  int rc = uv_async_init(loop, &io->async, on_requests);
  io->async.data = io;
  if (rc == 0 && (rc = uv_poll_init(loop, &io->epoll, io->epfd)) != 0)
    uv_close((uv_handle_t *)&io->async, NULL);
  if (rc == 0) {
    io->open_uv = 2;
    io->epoll.data = io;
    uv_poll_start(&io->epoll, UV_READABLE, on_epoll);
  }
  pthread_mutex_lock(&io->stop_mu);
  io->ready = rc == 0 ? 1 : -1;
  pthread_cond_broadcast(&io->stop_cv);
  pthread_mutex_unlock(&io->stop_mu);
}

static void destroy(cray__io *io) {
  if (io->epfd >= 0) close(io->epfd);
  pthread_mutex_destroy(&io->qmu);
  pthread_mutex_destroy(&io->mu);
  pthread_mutex_destroy(&io->stop_mu);
  pthread_cond_destroy(&io->stop_cv);
  cray__free(io->buckets);
  cray__free(io);
}

int cray__io_start(cray__io **out, cray__timers *timers, struct cray__sched *s,
                   cray__store *store) {
  cray__io *io = cray__calloc(1, sizeof *io);
  if (!io) return CRAY_ENOMEM;
  io->nbuckets = 64;
  io->buckets = cray__calloc(io->nbuckets, sizeof *io->buckets);
  io->timers = timers;
  io->s = s;
  io->store = store;
  io->next_id = 1;
  pthread_mutex_init(&io->qmu, NULL);
  pthread_mutex_init(&io->mu, NULL);
  pthread_mutex_init(&io->stop_mu, NULL);
  pthread_cond_init(&io->stop_cv, NULL);
  io->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (!io->buckets || io->epfd < 0 || cray__timers_call(timers, init_on_loop, io) != 0) {
    destroy(io);
    return CRAY_ENOMEM;
  }
  pthread_mutex_lock(&io->stop_mu);
  while (!io->ready) pthread_cond_wait(&io->stop_cv, &io->stop_mu);
  pthread_mutex_unlock(&io->stop_mu);
  if (io->ready < 0) {
    destroy(io);
    return CRAY_ESYS;
  }
  *out = io;
  return 0;
}

static void ask(cray__io *io, int what) {
  pthread_mutex_lock(&io->qmu);
  if (io->stop_asked < what) io->stop_asked = what;
  pthread_mutex_unlock(&io->qmu);
  uv_async_send(&io->async);
}

void cray__io_flush(cray__io *io) { ask(io, 1); }

void cray__io_stop(cray__io *io) {
  ask(io, 2);
  pthread_mutex_lock(&io->stop_mu);
  while (!io->stopped) pthread_cond_wait(&io->stop_cv, &io->stop_mu);
  pthread_mutex_unlock(&io->stop_mu);
  destroy(io);
}

/* ---- handles ---- */

static size_t bucket_of(cray__io *io, uint64_t id) { return (size_t)id & (io->nbuckets - 1); }

/* Doubles the table when it gets full; under mu. A failed growth keeps the old one. */
static void grow(cray__io *io) {
  size_t n = io->nbuckets * 2;
  cray__io_handle **b = cray__calloc(n, sizeof *b);
  if (!b) return;
  for (size_t i = 0; i < io->nbuckets; i++) {
    for (cray__io_handle *h = io->buckets[i], *next; h; h = next) {
      next = h->hnext;
      h->hnext = b[(size_t)h->id & (n - 1)];
      b[(size_t)h->id & (n - 1)] = h;
    }
  }
  cray__free(io->buckets);
  io->buckets = b;
  io->nbuckets = n;
}

static cray__io_handle *find(cray__io *io, uint64_t id) {
  for (cray__io_handle *h = io->buckets[bucket_of(io, id)]; h; h = h->hnext)
    if (h->id == id) return h;
  return NULL;
}

cray__io_handle *cray__io_handle_new(cray__io *io, int kind, int fd, void *owner) {
  cray__io_handle *h = cray__calloc(1, sizeof *h);
  if (!h) {
    close(fd);
    return NULL;
  }
  h->io = io;
  h->kind = kind;
  h->fd = fd;
  h->owner = owner;
  h->rc = 2; /* open, and the caller's */
  pthread_mutex_lock(&io->mu);
  /* relaxed: under mu, as every write of it */
  if (atomic_load_explicit(&io->nhandles, memory_order_relaxed) >= io->nbuckets) grow(io);
  h->id = io->next_id++;
  /* Registered disarmed (one-shot, nothing asked): its waiters arm it. */
  struct epoll_event e = {.events = EPOLLONESHOT, .data.u64 = h->id};
  int ok = epoll_ctl(io->epfd, EPOLL_CTL_ADD, fd, &e) == 0;
  if (ok) {
    size_t b = bucket_of(io, h->id);
    h->hnext = io->buckets[b];
    io->buckets[b] = h;
    atomic_fetch_add_explicit(&io->nhandles, 1, memory_order_relaxed); /* relaxed: under mu */
  }
  pthread_mutex_unlock(&io->mu);
  if (!ok) {
    close(fd);
    cray__free(h);
    return NULL;
  }
  return h;
}

static void retain_locked(cray__io_handle *h) { h->rc++; }

void cray__io_handle_release(cray__io_handle *h) {
  cray__io *io = h->io;
  pthread_mutex_lock(&io->mu);
  int last = --h->rc == 0;
  if (last) {
    cray__io_handle **p = &io->buckets[bucket_of(io, h->id)];
    while (*p != h) p = &(*p)->hnext;
    *p = h->hnext;
    atomic_fetch_sub_explicit(&io->nhandles, 1, memory_order_relaxed); /* relaxed: under mu */
  }
  pthread_mutex_unlock(&io->mu);
  if (!last) return;
  close(h->fd); /* closing drops it from the epoll set too */
  cray__free(h->buf);
  cray__free(h);
}

cray__io_handle *cray__io_use(cray__io *io, uint64_t id, int kind, int dir, void *owner,
                              int adopt, void *user, const char **why) {
  cray__io_op *stale = NULL;
  pthread_mutex_lock(&io->mu);
  cray__io_handle *h = find(io, id);
  *why = NULL;
  if (!h || h->kind != kind) {
    *why = h ? "kind" : "closed";
    h = NULL;
  } else if (atomic_load_explicit(&h->closed, memory_order_relaxed)) { /* set under mu */
    *why = "closed";
    if (dir >= 0 && h->user[dir] == user) { /* it was waiting when the handle closed */
      h->user[dir] = NULL;
      stale = h->wait[dir];
      h->wait[dir] = NULL;
    }
    h = NULL;
  } else if (dir < 0) {
    /* a look at it only */
  } else if (h->user[dir] != user) {
    if (h->user[dir]) *why = "busy";
    else if (h->owner != owner && h->user[!dir]) *why = "owned";
    else h->user[dir] = user, h->owner = adopt ? owner : h->owner;
  }
  if (*why) h = NULL;
  else retain_locked(h);
  pthread_mutex_unlock(&io->mu);
  if (stale) cray__io_op_release(stale);
  return h;
}

void cray__io_unuse(cray__io_handle *h, int dir) {
  if (dir < 0) {
    cray__io_handle_release(h);
    return;
  }
  pthread_mutex_lock(&h->io->mu);
  h->user[dir] = NULL;
  cray__io_op *op = h->wait[dir];
  h->wait[dir] = NULL;
  pthread_mutex_unlock(&h->io->mu);
  if (op) cray__io_op_release(op);
  cray__io_handle_release(h);
}

/* Under mu: marks h closed and takes its watchers (list linked by gone_next); 0 when it
 * was closed already. */
static int shut_locked(cray__io_handle *h, cray__io_op **list) {
  if (atomic_load_explicit(&h->closed, memory_order_relaxed)) return 0;
  atomic_store_explicit(&h->closed, 1, memory_order_relaxed); /* read under mu, or a hint */
  for (int d = 0; d < 2; d++) {
    if (!h->watch[d]) continue;
    h->watch[d]->gone_next = *list;
    *list = h->watch[d];
    h->watch[d] = NULL;
  }
  epoll_ctl(h->io->epfd, EPOLL_CTL_DEL, h->fd, NULL);
  return 1;
}

/* After shut_locked, without the lock: the watchers learn it closed, the peer sees the
 * end now (not when the last user goes), and the open reference goes. */
static void shut_done(cray__io_handle *h, cray__io_op *list) {
  while (list) {
    cray__io_op *next = list->gone_next;
    finish(list, UV_ECANCELED);
    list = next;
  }
  shutdown(h->fd, SHUT_RDWR);
  cray__io_handle_release(h);
}

/* Closes h, whose reference the caller holds. */
static void close_handle(cray__io_handle *h) {
  cray__io_op *list = NULL;
  pthread_mutex_lock(&h->io->mu);
  int first = shut_locked(h, &list);
  pthread_mutex_unlock(&h->io->mu);
  if (first) shut_done(h, list);
}

int cray__io_close(cray__io *io, uint64_t id, int kind) {
  pthread_mutex_lock(&io->mu);
  cray__io_handle *h = find(io, id);
  int ok = h && h->kind == kind && !atomic_load_explicit(&h->closed, memory_order_relaxed);
  if (ok) retain_locked(h);
  pthread_mutex_unlock(&io->mu);
  if (!ok) return CRAY_EINVAL;
  close_handle(h);
  cray__io_handle_release(h);
  return 0;
}

/* Whether no handle lives, read without the lock: a task ends many times more often than
 * a socket opens. Relaxed: a handle a task owns or uses was registered, under mu, before
 * that task could own or use it (on its thread, or on the loop's before the wake that ran
 * it again), so the thread it ends on sees the count it raised. */
static int no_handles(cray__io *io) {
  return atomic_load_explicit(&io->nhandles, memory_order_relaxed) == 0;
}

void cray__io_owner_end(cray__io *io, void *owner) {
  if (!owner || no_handles(io)) return;
  cray__io_handle *list = NULL;
  pthread_mutex_lock(&io->mu);
  for (size_t i = 0; i < io->nbuckets; i++) {
    for (cray__io_handle *h = io->buckets[i]; h; h = h->hnext) {
      if (h->owner != owner || atomic_load_explicit(&h->closed, memory_order_relaxed))
        continue;
      retain_locked(h);
      h->gnext = list;
      list = h;
    }
  }
  pthread_mutex_unlock(&io->mu);
  while (list) {
    cray__io_handle *next = list->gnext;
    close_handle(list);
    cray__io_handle_release(list);
    list = next;
  }
}

void cray__io_user_end(cray__io *io, void *user) {
  if (no_handles(io)) return;
  cray__io_op *list = NULL;
  pthread_mutex_lock(&io->mu);
  for (size_t i = 0; i < io->nbuckets; i++) {
    for (cray__io_handle *h = io->buckets[i]; h; h = h->hnext) {
      for (int d = 0; d < 2; d++) {
        if (h->user[d] != user) continue;
        h->user[d] = NULL;
        if (h->wait[d]) {
          h->wait[d]->gone_next = list;
          list = h->wait[d];
          h->wait[d] = NULL;
        }
      }
    }
  }
  pthread_mutex_unlock(&io->mu);
  while (list) {
    cray__io_op *next = list->gone_next;
    cray__io_op_release(list);
    list = next;
  }
}

/* ---- watching a descriptor ---- */

typedef struct poll_op {
  cray__io_op op;
  cray__io_handle *h;
  int dir;
} poll_op;

/* Arms h's one-shot registration with what its watchers wait for; under mu. */
static void rearm_locked(cray__io_handle *h) {
  uint32_t ev = (h->watch[CRAY__IO_IN] ? EPOLLIN | EPOLLRDHUP : 0) |
                (h->watch[CRAY__IO_OUT] ? EPOLLOUT : 0);
  if (!ev) return;
  struct epoll_event e = {.events = ev | EPOLLONESHOT, .data.u64 = h->id};
  epoll_ctl(h->io->epfd, EPOLL_CTL_MOD, h->fd, &e);
}

void cray__io_watch(cray__io_op *op, cray__task *t) {
  poll_op *p = (poll_op *)op;
  cray__io_handle *h = p->h;
  cray__io *io = h->io;
  op->task = t;
  if (t) cray__task_retain(t);
  /* relaxed: mu orders the op's fields for whoever takes it from the handle */
  atomic_fetch_add_explicit(&op->rc, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&io->pending, 1, memory_order_relaxed); /* a count only */
  cray__io_op *old = NULL;
  pthread_mutex_lock(&io->mu);
  int closed = atomic_load_explicit(&h->closed, memory_order_relaxed);
  if (!closed) {
    old = h->watch[p->dir];
    h->watch[p->dir] = op;
    rearm_locked(h);
  }
  pthread_mutex_unlock(&io->mu);
  if (closed) finish(op, UV_ECANCELED);
  if (old) finish(old, 0); /* replaced: its waiter looks again */
}

/* On the loop thread: epfd is readable. Finishes the watchers of the sockets that are
 * ready, and arms again those still watched for the other direction. */
static void on_epoll(uv_poll_t *p, int status, int events) {
  (void)status, (void)events;
  cray__io *io = p->data;
  struct epoll_event evs[64];
  int n;
  do {
    n = epoll_wait(io->epfd, evs, 64, 0);
    for (int i = 0; i < n; i++) {
      uint32_t ev = evs[i].events;
      int any = ev & (EPOLLERR | EPOLLHUP);
      cray__io_op *ready[2] = {NULL, NULL};
      pthread_mutex_lock(&io->mu);
      cray__io_handle *h = find(io, evs[i].data.u64);
      if (h && !atomic_load_explicit(&h->closed, memory_order_relaxed)) {
        if (h->watch[CRAY__IO_IN] && (any || ev & (EPOLLIN | EPOLLRDHUP)))
          ready[0] = h->watch[CRAY__IO_IN], h->watch[CRAY__IO_IN] = NULL;
        if (h->watch[CRAY__IO_OUT] && (any || ev & EPOLLOUT))
          ready[1] = h->watch[CRAY__IO_OUT], h->watch[CRAY__IO_OUT] = NULL;
        rearm_locked(h);
      }
      pthread_mutex_unlock(&io->mu);
      for (int d = 0; d < 2; d++)
        if (ready[d]) finish(ready[d], 0);
    }
  } while (n == 64);
}

/* The runtime stops: every task that watches a socket is woken. */
static void wake_watchers(cray__io *io) {
  pthread_mutex_lock(&io->mu);
  for (size_t i = 0; i < io->nbuckets; i++)
    for (cray__io_handle *h = io->buckets[i]; h; h = h->hnext)
      for (int d = 0; d < 2; d++)
        if (h->watch[d] && h->watch[d]->task) cray__sched_wake(io->s, h->watch[d]->task);
  pthread_mutex_unlock(&io->mu);
}

static void poll_free(cray__io_op *op) { cray__io_handle_release(((poll_op *)op)->h); }

cray__io_op *cray__io_poll_op(cray__io_handle *h, int dir) {
  poll_op *p = (poll_op *)cray__io_op_new(h->io, sizeof *p, NULL, poll_free, NULL);
  if (!p) return NULL;
  pthread_mutex_lock(&h->io->mu);
  retain_locked(h);
  pthread_mutex_unlock(&h->io->mu);
  p->h = h;
  p->dir = dir;
  return &p->op;
}

/* At stop, on the loop thread: every handle still open closes now. */
static void close_all_handles(cray__io *io) {
  cray__io_handle *list = NULL;
  cray__io_op *ops = NULL;
  pthread_mutex_lock(&io->mu);
  for (size_t i = 0; i < io->nbuckets; i++) {
    for (cray__io_handle *h = io->buckets[i]; h; h = h->hnext) {
      if (!shut_locked(h, &ops)) continue;
      h->gnext = list;
      list = h;
    }
  }
  pthread_mutex_unlock(&io->mu);
  while (ops) {
    cray__io_op *next = ops->gone_next;
    finish(ops, UV_ECANCELED);
    ops = next;
  }
  while (list) {
    cray__io_handle *next = list->gnext;
    shut_done(list, NULL);
    list = next;
  }
}
