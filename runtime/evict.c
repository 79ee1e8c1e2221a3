/*
 * evict.c: the store's memory budget: the spill thread, and how puts wait for room.
 *
 * The spill thread sleeps on `wake` until there is work: memory past the budget (the put
 * that crosses it kicks the thread), a thread in cray__store_reserve asking for a run, or
 * copies on disk of freed objects to delete. A *run* walks a clock hand over the shards'
 * chains and takes entries out of memory until memory is down to its target (90% of the
 * budget, lower while a reserve waits for a big object):
 *
 * - an entry is skipped while it is pending, already out, pinned, or its blob has
 *   references beyond its entry's (a view, a C reader, a task argument);
 * - an entry touched since the hand last passed (`hot`) only loses its mark: the second
 *   chance that makes the clock an approximation of least-recently-used;
 * - an entry already on disk (read back earlier) is dropped at once: its bytes are there;
 * - the others are gathered, a batch of up to 64 MiB or 1024 objects, each entry and blob
 *   held by a reference, written in one LMDB transaction with no lock held, and then
 *   swapped for husks one by one under their shard locks (unless a reader came by
 *   meanwhile: then the copy on disk waits for the next pass).
 *
 * A run that goes twice around without taking anything out has *stalled*: everything in
 * memory is pinned, or the spill space is full. Reserve turns that into an answer (let
 * the object in, or CRAY_ENOMEM); the thread itself waits a while before it tries again
 * for the budget alone, and after a failed write it tries writing again a second later or
 * as soon as deletes have made room.
 *
 * The thread starts the first time it is needed, so a program that never passes its
 * budget stays single-threaded (the C library's malloc and mutexes are cheaper then).
 *
 * Locks: `mu` guards the fields of the spill state (store_internal.h). It is taken after a
 * shard lock (add_bytes kicking the thread, unlink_entry queueing a delete) and never
 * held while a shard lock is taken.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "log.h"
#include "store_internal.h"
#include "wait.h"

#define BATCH_BYTES ((size_t)64 << 20)
#define BATCH_MAX 1024
#define SLICE 256              /* buckets looked at per shard lock */
#define STALL_PAUSE 0.1        /* seconds before a stalled budget run is tried again */
#define WRITE_RETRY 1.0        /* seconds before writes are tried again after an error */

typedef struct victim {
  cray__entry *e;
  cray__blob *b;
} victim;

typedef struct batch {
  victim v[BATCH_MAX];
  cray__spill_item items[BATCH_MAX];
  size_t n, bytes;
} batch;

/* ---- a run ---- */

/* Looks at one entry under its shard lock: dropped at once (its shell goes on `gone`),
 * added to the batch, or left. Returns the bytes it took out of memory now. */
static size_t consider(cray__store *s, shard *sh, cray__entry *e, batch *bt, int may_write,
                       cray__blob **gone, size_t *ngone) {
  if (cray__entry_state(e) == CRAY__PENDING) return 0;
  cray__blob *b = atomic_load_explicit(&e->stored, memory_order_relaxed);
  if ((b->flags & (CRAY__BLOB_SPILLED | CRAY__BLOB_INLINE)) ||
      atomic_load_explicit(&e->pins, memory_order_relaxed))
    return 0;
  if (atomic_load_explicit(&e->hot, memory_order_relaxed)) {
    atomic_store_explicit(&e->hot, 0, memory_order_relaxed);
    return 0;
  }
  if (atomic_load_explicit(&b->rc, memory_order_relaxed) != 1) return 0;
  if (e->on_disk) {
    cray__blob *old = cray__store_evict_locked(s, sh, e, 1);
    if (!old) return 0;
    gone[(*ngone)++] = old;
    return old->len;
  }
  if (!may_write || bt->n == BATCH_MAX) return 0;
  uint32_t n = atomic_load_explicit(&e->refs, memory_order_relaxed);
  do {
    if (n == 0) return 0; /* being freed */
  } while (!atomic_compare_exchange_weak_explicit(&e->refs, &n, n + 1, memory_order_acquire,
                                                  memory_order_relaxed));
  cray__blob_retain(b);
  bt->v[bt->n] = (victim){e, b};
  bt->items[bt->n] = (cray__spill_item){e->id, b->data, b->len};
  bt->n++;
  bt->bytes += b->len;
  return 0;
}

/* Moves the hand over up to SLICE buckets of its shard. Returns the bytes dropped; sets
 * *wrapped when the hand left the last shard for the first. */
static size_t visit(cray__store *s, batch *bt, size_t need, int may_write, int *wrapped) {
  enum { GONE_MAX = 4 * SLICE };
  cray__blob *gone[GONE_MAX];
  size_t ngone = 0, freed = 0;
  shard *sh = &s->shards[s->hand];
#define ENOUGH() \
  (freed + bt->bytes >= need || bt->bytes >= BATCH_BYTES || ngone == GONE_MAX)
  pthread_mutex_lock(&sh->mu);
  for (int k = 0; k < SLICE && !ENOUGH(); k++) {
    for (cray__entry *e = cray__shard_chain(sh, sh->hand); e && !ENOUGH(); e = e->next)
      freed += consider(s, sh, e, bt, may_write, gone, &ngone);
    if ((sh->hand = cray__shard_step(sh, sh->hand)) >= cray__shard_nchains(sh)) {
      sh->hand = 0;
      s->hand = (s->hand + 1) % NSHARDS;
      *wrapped = s->hand == 0;
      break;
    }
  }
#undef ENOUGH
  pthread_mutex_unlock(&sh->mu);
  while (ngone) cray__blob_free_shell(s, gone[--ngone]);
  return freed;
}

/* Writes the batch, then swaps what was written for husks. Returns the bytes taken out
 * of memory; *err gets the write's error. */
static size_t write_batch(cray__store *s, batch *bt, int *err) {
  size_t done = 0, freed = 0;
  *err = cray__spill_write(s->spill, bt->items, bt->n, &done);
  for (size_t i = 0; i < bt->n; i++) {
    cray__entry *e = bt->v[i].e;
    cray__blob *b = bt->v[i].b, *old = NULL;
    if (i < done) {
      shard *sh = cray__shard_of(s, &e->id);
      pthread_mutex_lock(&sh->mu);
      e->on_disk = 1;
      sh->disk_objects++;
      sh->disk_bytes += b->len;
      old = cray__store_evict_locked(s, sh, e, 2);
      pthread_mutex_unlock(&sh->mu);
    }
    if (old) {
      freed += old->len;
      cray__blob_free_shell(s, old);
    } else {
      cray__blob_release(s, b);
    }
    cray__store_release(s, e);
  }
  bt->n = bt->bytes = 0;
  return freed;
}

/* Takes entries out of memory until it is at target. Returns 1 when it stalled: three
 * wraps of the hand (two whole turns, whatever shard it started in) took nothing out. */
static int run(cray__store *s, batch *bt, uint64_t target, int may_write, int *werr) {
  int idle_turns = 0;
  cray__bigmem_trim(&s->big);
  while (!atomic_load_explicit(&s->stop, memory_order_relaxed)) {
    uint64_t resident = atomic_load_explicit(&s->resident, memory_order_relaxed);
    if (resident <= target) return 0;
    size_t need = (size_t)(resident - target), freed = 0;
    int wrapped = 0;
    while (!wrapped && freed + bt->bytes < need && bt->bytes < BATCH_BYTES && bt->n < BATCH_MAX)
      freed += visit(s, bt, need - freed, may_write, &wrapped);
    if (bt->n) {
      int err;
      freed += write_batch(s, bt, &err);
      if (err) {
        *werr = err;
        may_write = 0;
      }
    }
    if (freed) idle_turns = 0;
    else if (wrapped && ++idle_turns == 3) return 1;
  }
  return 0;
}

/* ---- the thread ---- */

static uint64_t target_of(const cray__store *s) {
  if (!s->waiting) return s->low;
  uint64_t t = s->want < s->hard ? s->hard - s->want : 0;
  return t < s->low ? t : s->low;
}

static int has_work(cray__store *s, double now) {
  if ((s->ndead && now >= s->dead_at) || s->sweep_req != s->sweep_done) return 1;
  return atomic_load_explicit(&s->resident, memory_order_relaxed) > s->budget &&
         (!s->stalled || now >= s->stalled_at + STALL_PAUSE);
}

static void *spill_main(void *arg) {
  cray__store *s = arg;
  batch *bt = cray__calloc(1, sizeof *bt);
  cray__log_thread("spill");
  pthread_mutex_lock(&s->mu);
  while (!atomic_load_explicit(&s->stop, memory_order_relaxed)) { /* set under s->mu, held */
    double now = cray__now();
    if (!bt || !has_work(s, now)) {
      /* A put crossing the budget from now on signals. relaxed: the signal itself is sent
       * and awaited under s->mu, which orders it; the flag only spares repeated ones. */
      atomic_store_explicit(&s->kicked, 0, memory_order_relaxed);
      if (has_work(s, now)) continue;
      if (s->stalled || s->ndead) { /* something to try again in a while */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)(STALL_PAUSE * 1e9);
        if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&s->wake, &s->mu, &ts);
      } else {
        pthread_cond_wait(&s->wake, &s->mu);
      }
      if (!bt) bt = cray__calloc(1, sizeof *bt);
      continue;
    }
    cray__spill_item *dead = NULL;
    size_t ndead = 0;
    if (now >= s->dead_at) {
      dead = s->dead, ndead = s->ndead;
      s->dead = NULL;
      s->ndead = s->dead_cap = 0;
    }
    uint64_t req = s->sweep_req, target = target_of(s), want = s->want;
    int may_write = !s->full_err || now >= s->full_at + WRITE_RETRY;
    pthread_mutex_unlock(&s->mu);

    int derr = ndead ? cray__spill_delete(s->spill, dead, ndead) : 0;
    int werr = 0, stalled = 0;
    if (atomic_load_explicit(&s->resident, memory_order_relaxed) > target)
      stalled = run(s, bt, target, may_write || (ndead && !derr), &werr);

    pthread_mutex_lock(&s->mu);
    if (derr) { /* kept for a later turn (a delete can fail on a full disk) */
      s->dead_at = cray__now() + WRITE_RETRY;
      size_t need = s->ndead + ndead;
      cray__spill_item *v = need > s->dead_cap ? cray__realloc(s->dead, need * sizeof *v) : s->dead;
      if (v) {
        memcpy(v + s->ndead, dead, ndead * sizeof *v);
        s->dead = v;
        s->ndead = need;
        s->dead_cap = need > s->dead_cap ? need : s->dead_cap;
      }
    } else if (ndead) {
      s->full_err = 0; /* room was made */
    }
    cray__free(dead);
    if (werr) {
      s->full_err = werr;
      s->full_at = cray__now();
    } else if (may_write) {
      s->full_err = 0;
    }
    /* A run that reached its target may still leave a waiter short: its object is
     * bigger than the room there can be. Nothing more can be done for it either. */
    uint64_t resident = atomic_load_explicit(&s->resident, memory_order_relaxed);
    s->stalled = stalled || (want && resident + want > s->hard);
    s->stalled_at = cray__now();
    s->sweep_done = req;
    pthread_cond_broadcast(&s->room);
  }
  pthread_mutex_unlock(&s->mu);
  cray__free(bt);
  return NULL;
}

int cray__store_spill_to(cray__store *s, cray__spill *sp) {
  s->spill = sp;
  s->hard = s->budget + s->budget / 2;
  s->low = s->budget - s->budget / 10;
  atomic_init(&s->stop, 0);
  return 0;
}

void cray__store_spill_abandon(cray__store *s) {
  if (s->spill) cray__spill_abandon(s->spill);
}

int cray__store_spill_start(cray__store *s) {
  if (s->running) return 0;
  if (cray__thread_start(&s->thread, spill_main, s) != 0) return CRAY_ESYS;
#ifdef __GLIBC__
  pthread_setname_np(s->thread, "cray-spill");
#endif
  s->running = 1;
  return 0;
}

void cray__store_spill_stop(cray__store *s) {
  if (!s->spill) return;
  pthread_mutex_lock(&s->mu);
  int running = s->running;
  atomic_store_explicit(&s->stop, 1, memory_order_relaxed); /* under s->mu, as it is read */
  pthread_cond_signal(&s->wake);
  pthread_cond_broadcast(&s->room);
  pthread_mutex_unlock(&s->mu);
  if (running) pthread_join(s->thread, NULL);
  cray__spill_close(s->spill);
  s->spill = NULL;
}

void cray__store_forget(cray__store *s, const cray_id *id, size_t len) {
  pthread_mutex_lock(&s->mu);
  if (s->ndead == s->dead_cap) {
    size_t cap = s->dead_cap ? s->dead_cap * 2 : 256;
    cray__spill_item *v = cray__realloc(s->dead, cap * sizeof *v);
    if (!v) { /* the copy stays on disk until close; nothing is lost */
      pthread_mutex_unlock(&s->mu);
      return;
    }
    s->dead = v;
    s->dead_cap = cap;
  }
  s->dead[s->ndead++] = (cray__spill_item){*id, NULL, len};
  if (s->ndead == 1 && cray__store_spill_start(s) == 0) pthread_cond_signal(&s->wake);
  pthread_mutex_unlock(&s->mu);
}

/* ---- waiting for room ---- */

int cray__store_reserve(cray__store *s, size_t len, int may_fail) {
  if (!s->spill) return 0;
  if (atomic_load_explicit(&s->resident, memory_order_relaxed) + len <= s->hard) return 0;
  int rc = 0;
  pthread_mutex_lock(&s->mu);
  s->waiting++;
  if (len > s->want) s->want = len;
  for (;;) {
#define FITS() (atomic_load_explicit(&s->resident, memory_order_relaxed) + len <= s->hard)
    if (FITS() || atomic_load_explicit(&s->stop, memory_order_relaxed)) break; /* s->mu held */
    if (cray__store_spill_start(s) != 0) { /* no thread, no room to make: as a stall */
      if (may_fail && atomic_load_explicit(&s->resident, memory_order_relaxed) > s->budget)
        rc = CRAY_ENOMEM;
      break;
    }
    uint64_t mine = ++s->sweep_req;
    pthread_cond_signal(&s->wake);
    while (s->sweep_done < mine && !FITS() &&
           !atomic_load_explicit(&s->stop, memory_order_relaxed)) /* s->mu held */
      pthread_cond_wait(&s->room, &s->mu);
    if (FITS() || s->sweep_done < mine || !s->stalled) continue;
    /* Nothing more can leave memory now. */
    if (may_fail && atomic_load_explicit(&s->resident, memory_order_relaxed) > s->budget)
      rc = CRAY_ENOMEM;
    break;
#undef FITS
  }
  if (--s->waiting == 0) s->want = 0;
  pthread_mutex_unlock(&s->mu);
  return rc;
}

void cray__store_spill_sync(cray__store *s) {
  if (!s->spill) return;
  pthread_mutex_lock(&s->mu);
  if (!s->running) {
    pthread_mutex_unlock(&s->mu);
    return;
  }
  uint64_t mine = ++s->sweep_req;
  pthread_cond_signal(&s->wake);
  /* relaxed: s->mu is held */
  while (s->sweep_done < mine && !atomic_load_explicit(&s->stop, memory_order_relaxed))
    pthread_cond_wait(&s->room, &s->mu);
  pthread_mutex_unlock(&s->mu);
}

void cray__store_describe_full(cray__store *s, size_t len, char *buf, size_t n) {
  cray_store_stats st;
  cray__store_stats(s, &st);
  pthread_mutex_lock(&s->mu);
  int err = s->full_err;
  pthread_mutex_unlock(&s->mu);
  char a[32], b[32], c[32], d[32], e[32], spill[600];
  const char *dir = s->spill ? cray__spill_dir(s->spill) : "(none)";
  uint64_t cap = s->spill ? cray__spill_cap(s->spill) : 0;
  if (err && cap)
    snprintf(spill, sizeof spill, "%s: %s of %s (--spill-max) used in %s", cray__spill_why(err),
             cray__log_size(s->spill ? cray__spill_used(s->spill) : 0, c), cray__log_size(cap, e), dir);
  else if (err)
    snprintf(spill, sizeof spill, "%s: %s spilled to %s", cray__spill_why(err),
             cray__log_size(st.spilled_bytes, c), dir);
  else
    snprintf(spill, sizeof spill,
             "what is in memory is in use (held by views or readers), so it cannot be spilled "
             "(%s spilled to %s)",
             cray__log_size(st.spilled_bytes, c), dir);
  snprintf(buf, n, "no room for a %s object: %s in memory (budget %s, -m/--memory) and %s",
           cray__log_size(len, a), cray__log_size(st.bytes, b), cray__log_size(s->budget, d), spill);
}
