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
 * release takes a handle out of it, under the same lock that look-ups retain under.
 */
#include "io.h"

#include <errno.h>
#include <math.h>
#include <string.h>
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
  size_t nbuckets, nhandles;
  uint64_t next_id;

  /* loop thread */
  cray__io_op *live;
  int open_uv;                   /* uv handles of the service not closed yet */
  int stopping;
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
  if (io->stopping && !io->live && io->open_uv == 0) signal_stopped(io);
}

void cray__io_complete(cray__io_op *op, int result) {
  cray__io *io = op->io;
  if (op->prev_live) op->prev_live->next_live = op->next_live;
  else io->live = op->next_live;
  if (op->next_live) op->next_live->prev_live = op->prev_live;
  op->result = result;
  cray__task *t = op->task;
  op->task = NULL;
  if (t) {
    atomic_store_explicit(&op->done, 1, memory_order_release); /* publishes result */
    cray__sched_wake(io->s, t);
    cray__task_release(io->store, t);
  } else {
    pthread_mutex_lock(&op->mu);
    atomic_store_explicit(&op->done, 1, memory_order_release); /* publishes result */
    pthread_cond_broadcast(&op->cv);
    pthread_mutex_unlock(&op->mu);
  }
  atomic_fetch_sub_explicit(&io->pending, 1, memory_order_relaxed); /* a count only */
  cray__io_op_release(op);
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
  if (io->stopping) {
    if (op->task) cray__task_release(io->store, op->task);
    op->task = NULL;
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
  } else if (stop == 2 && !io->stopping) {
    /* The workers are gone: nobody is woken any more, everything open closes. */
    io->stopping = 1;
    for (cray__io_op *op = io->live; op; op = op->next_live) {
      if (op->task) cray__task_release(io->store, op->task);
      op->task = NULL;
    }
    close_all_handles(io);
    for (cray__io_op *op = io->live, *next; op; op = next) {
      next = op->next_live;
      if (op->abort) op->abort(op);
    }
    uv_close((uv_handle_t *)&io->async, on_async_closed);
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
  if (rc == 0) io->open_uv = 1;
  io->async.data = io;
  pthread_mutex_lock(&io->stop_mu);
  io->ready = rc == 0 ? 1 : -1;
  pthread_cond_broadcast(&io->stop_cv);
  pthread_mutex_unlock(&io->stop_mu);
}

static void destroy(cray__io *io) {
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
  if (!io->buckets || cray__timers_call(timers, init_on_loop, io) != 0) {
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

static void close_start(cray__io *io, uv_loop_t *loop, cray__io_op *op);
static void close_free(cray__io_op *op);

typedef struct close_op {
  cray__io_op op;
  cray__io_handle *h;
} close_op;

cray__io_handle *cray__io_handle_new(cray__io *io, int kind, int fd, void *owner) {
  cray__io_handle *h = cray__calloc(1, sizeof *h);
  close_op *c = (close_op *)cray__io_op_new(io, sizeof *c, close_start, close_free, NULL);
  if (!h || !c) {
    cray__free(h);
    if (c) cray__io_op_release(&c->op);
    close(fd);
    return NULL;
  }
  h->io = io;
  h->kind = kind;
  h->fd = fd;
  h->owner = owner;
  h->rc = 2; /* open, and the caller's */
  h->close_op = &c->op;
  pthread_mutex_lock(&io->mu);
  if (io->nhandles >= io->nbuckets) grow(io);
  h->id = io->next_id++;
  size_t b = bucket_of(io, h->id);
  h->hnext = io->buckets[b];
  io->buckets[b] = h;
  io->nhandles++;
  pthread_mutex_unlock(&io->mu);
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
    io->nhandles--;
  }
  pthread_mutex_unlock(&io->mu);
  if (!last) return;
  close(h->fd);
  if (h->close_op) cray__io_op_release(h->close_op);
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

/* Closes h, whose reference the caller holds: only the first close submits. */
static void close_handle(cray__io_handle *h) {
  pthread_mutex_lock(&h->io->mu);
  int first = !atomic_load_explicit(&h->closed, memory_order_relaxed);
  atomic_store_explicit(&h->closed, 1, memory_order_relaxed); /* read under mu, or a hint */
  cray__io_op *op = h->close_op;
  h->close_op = NULL;
  if (first) retain_locked(h); /* the close op's, and the open reference it drops */
  pthread_mutex_unlock(&h->io->mu);
  if (!first) return;
  ((close_op *)op)->h = h;
  cray__io_submit(op, NULL);
  cray__io_op_release(op);
  shutdown(h->fd, SHUT_RDWR); /* the peer sees the end now, not when the last user goes */
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

void cray__io_owner_end(cray__io *io, void *owner) {
  if (!owner) return;
  cray__io_handle *list = NULL;
  pthread_mutex_lock(&io->mu);
  if (io->nhandles) {
    for (size_t i = 0; i < io->nbuckets; i++) {
      for (cray__io_handle *h = io->buckets[i]; h; h = h->hnext) {
        if (h->owner != owner || atomic_load_explicit(&h->closed, memory_order_relaxed))
          continue;
        retain_locked(h);
        h->gnext = list;
        list = h;
      }
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
  cray__io_op *list = NULL;
  pthread_mutex_lock(&io->mu);
  if (io->nhandles) {
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
  }
  pthread_mutex_unlock(&io->mu);
  while (list) {
    cray__io_op *next = list->gone_next;
    cray__io_op_release(list);
    list = next;
  }
}

/* ---- watching a descriptor (loop thread) ---- */

typedef struct poll_op {
  cray__io_op op;
  cray__io_handle *h;
  int dir;
} poll_op;

static void update_events(cray__io_handle *h);

static void on_poll(uv_poll_t *p, int status, int events) {
  cray__io_handle *h = p->data;
  static const int bits[2] = {UV_READABLE, UV_WRITABLE};
  for (int d = 0; d < 2; d++) {
    cray__io_op *op = h->watch[d];
    if (!op || !(status < 0 || events & (bits[d] | UV_DISCONNECT))) continue;
    h->watch[d] = NULL;
    cray__io_complete(op, status < 0 ? status : 0);
  }
  update_events(h);
}

static void update_events(cray__io_handle *h) {
  int ev = (h->watch[CRAY__IO_IN] ? UV_READABLE : 0) | (h->watch[CRAY__IO_OUT] ? UV_WRITABLE : 0);
  if (!h->poll || ev == h->events) return;
  h->events = ev;
  if (ev) uv_poll_start(h->poll, ev, on_poll);
  else uv_poll_stop(h->poll);
}

static void on_poll_closed(uv_handle_t *p) {
  cray__io_handle *h = p->data;
  cray__io *io = h->io;
  cray__free(p);
  io->open_uv--;
  cray__io_handle_release(h);
  maybe_stopped(io);
}

static void poll_start(cray__io *io, uv_loop_t *loop, cray__io_op *op) {
  poll_op *p = (poll_op *)op;
  cray__io_handle *h = p->h;
  if (atomic_load_explicit(&h->closed, memory_order_relaxed)) { /* its close op comes next */
    cray__io_complete(op, UV_ECANCELED);
    return;
  }
  if (!h->poll) {
    uv_poll_t *u = cray__malloc(sizeof *u);
    int rc = u ? uv_poll_init_socket(loop, u, h->fd) : UV_ENOMEM;
    if (rc != 0) {
      cray__free(u);
      cray__io_complete(op, rc);
      return;
    }
    u->data = h;
    h->poll = u;
    io->open_uv++;
    pthread_mutex_lock(&io->mu);
    retain_locked(h); /* the poll handle's, dropped when it is closed */
    pthread_mutex_unlock(&io->mu);
  }
  if (h->watch[p->dir]) cray__io_complete(h->watch[p->dir], 0); /* replaced: look again */
  h->watch[p->dir] = op;
  update_events(h);
}

static void poll_abort(cray__io_op *op) {
  poll_op *p = (poll_op *)op;
  cray__io_handle *h = p->h;
  if (h->watch[p->dir] == op) h->watch[p->dir] = NULL;
  update_events(h);
  cray__io_complete(op, UV_ECANCELED);
}

static void poll_free(cray__io_op *op) { cray__io_handle_release(((poll_op *)op)->h); }

cray__io_op *cray__io_poll_op(cray__io_handle *h, int dir) {
  poll_op *p = (poll_op *)cray__io_op_new(h->io, sizeof *p, poll_start, poll_free, poll_abort);
  if (!p) return NULL;
  pthread_mutex_lock(&h->io->mu);
  retain_locked(h);
  pthread_mutex_unlock(&h->io->mu);
  p->h = h;
  p->dir = dir;
  return &p->op;
}

/* Closing, on the loop thread: the watchers are told, the poll handle closed. */
static void close_now(cray__io_handle *h) {
  for (int d = 0; d < 2; d++) {
    cray__io_op *w = h->watch[d];
    h->watch[d] = NULL;
    if (w) cray__io_complete(w, UV_ECANCELED);
  }
  if (h->poll) {
    uv_close((uv_handle_t *)h->poll, on_poll_closed);
    h->poll = NULL;
  }
}

static void close_start(cray__io *io, uv_loop_t *loop, cray__io_op *op) {
  (void)io, (void)loop;
  close_now(((close_op *)op)->h);
  cray__io_complete(op, 0);
}

static void close_free(cray__io_op *op) {
  cray__io_handle *h = ((close_op *)op)->h;
  if (!h) return;
  /* The close op's reference and the open one. */
  pthread_mutex_lock(&h->io->mu);
  h->rc--;
  pthread_mutex_unlock(&h->io->mu);
  cray__io_handle_release(h);
}

/* At stop, on the loop thread: every handle still open closes now, and its open
 * reference goes (its close op is never submitted). */
static void close_all_handles(cray__io *io) {
  cray__io_handle *list = NULL;
  pthread_mutex_lock(&io->mu);
  for (size_t i = 0; i < io->nbuckets; i++) {
    for (cray__io_handle *h = io->buckets[i]; h; h = h->hnext) {
      if (atomic_load_explicit(&h->closed, memory_order_relaxed)) continue;
      atomic_store_explicit(&h->closed, 1, memory_order_relaxed); /* under mu */
      h->gnext = list;
      list = h;
    }
  }
  pthread_mutex_unlock(&io->mu);
  while (list) {
    cray__io_handle *next = list->gnext;
    close_now(list);
    shutdown(list->fd, SHUT_RDWR);
    cray__io_handle_release(list);
    list = next;
  }
}
