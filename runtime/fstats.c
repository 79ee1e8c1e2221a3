/*
 * fstats.c: see fstats.h for the design.
 *
 * A slot's table is CAP pointers to entries, found by the name's hash with linear
 * probing; the owner makes an entry the first time it sees a name (a copy of the name
 * with it) and publishes it with a release store, so a reader that loads the pointer
 * (acquire) sees it whole. Past three quarters full, new names share one "(other)"
 * entry. Counters have one writer (the slot's owner, or slot 0's mutex holder), which
 * adds with a relaxed load and store: readers see each counter whole, never torn.
 *
 * Run times go into a histogram of quarter octaves of stamps (each bucket 19% wider than
 * the last), from which p50 and p99 are read to within that width. Counters and buckets
 * hold stamps; reading turns them into seconds at the stamps' rate: measured against the
 * clock since the recorder was made for the time-stamp counter, 1e9 for nanoseconds.
 */
#include "fstats.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <x86intrin.h>
#endif

#include "alloc.h"
#include "wait.h"

#define CAP 128
#define SITE_CACHE 16 /* entries found by their site, per slot: a power of two */
#define NBUCKETS 160 /* quarter octaves up to 2^41 stamps: 37 minutes of nanoseconds, 12
                        of a 3 GHz counter */

typedef struct fn_entry {
  uint32_t hash;
  _Atomic uint64_t calls, failed, retries, ran, run, queued, deps; /* run..deps: stamps */
  _Atomic uint32_t hist[NBUCKETS];
  char name[];
} fn_entry;

typedef struct slot {
  _Atomic(fn_entry *) table[CAP + 1]; /* [CAP]: "(other)" */
  int used;                           /* entries in table[0..CAP), owner only */
  fn_entry *last;                     /* the entry of a name with no site found last,
                                         owner only: a run of calls skips the hashing */
  struct {
    uint32_t site;                    /* a site (sites.h), which names one text, or 0 */
    fn_entry *entry;                  /* that text's entry */
  } by_site[SITE_CACHE];              /* by the site's low bits, owner only: calls of a
                                         few names in turn (a ping and a pong) skip the
                                         hashing */
  _Atomic uint64_t busy;              /* stamps */
  char pad[64];
} slot;

struct cray__fstats {
  int workers;
  double born;        /* cray__now() when made */
  uint64_t born_stamp; /* and the stamp then */
  pthread_mutex_t mu; /* slot 0's writers */
  _Atomic uint64_t actors[CRAY__ACTOR_EVENTS];
  slot *slots;        /* workers + 1 */
};

cray__fstats *cray__fstats_new(int workers) {
  cray__fstats *f = cray__calloc(1, sizeof *f);
  if (!f) return NULL;
  f->slots = cray__calloc((size_t)workers + 1, sizeof *f->slots);
  if (!f->slots) {
    cray__free(f);
    return NULL;
  }
  f->workers = workers;
  f->born = cray__now();
  f->born_stamp = cray__fstats_stamp();
  pthread_mutex_init(&f->mu, NULL);
  return f;
}

void cray__fstats_free(cray__fstats *f) {
  if (!f) return;
  for (int i = 0; i <= f->workers; i++)
    for (int k = 0; k <= CAP; k++)
      cray__free(atomic_load_explicit(&f->slots[i].table[k], memory_order_relaxed));
  pthread_mutex_destroy(&f->mu);
  cray__free(f->slots);
  cray__free(f);
}

enum { STAMP_UNKNOWN, STAMP_TSC, STAMP_NS };

/* Which stamps this machine gives: the time-stamp counter when the CPU says it runs at one
 * rate always (invariant), else nanoseconds. */
static int stamp_kind(void) {
  static _Atomic int kind = STAMP_UNKNOWN;
  /* relaxed: every thread works out the same answer, so a race only repeats the work */
  int k = atomic_load_explicit(&kind, memory_order_relaxed);
  if (k != STAMP_UNKNOWN) return k;
  k = STAMP_NS;
#if defined(__x86_64__) || defined(__i386__)
  unsigned a, b, c, d;
  if (__get_cpuid(0x80000007u, &a, &b, &c, &d) && (d & (1u << 8))) k = STAMP_TSC;
#endif
  atomic_store_explicit(&kind, k, memory_order_relaxed); /* relaxed: as above */
  return k;
}

uint64_t cray__fstats_stamp(void) {
#if defined(__x86_64__) || defined(__i386__)
  if (stamp_kind() == STAMP_TSC) return __rdtsc();
#endif
  return (uint64_t)(cray__now() * 1e9);
}

/* Adds v to a counter that only the caller writes. */
static inline void add64(_Atomic uint64_t *x, uint64_t v) {
  /* relaxed: one writer; readers want each value whole, not ordered with the others */
  atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed) + v, memory_order_relaxed);
}

static uint32_t hash_of(const char *s) {
  uint32_t h = 2166136261u;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

static fn_entry *entry_new(const char *name, uint32_t hash) {
  size_t len = strlen(name);
  fn_entry *e = cray__calloc(1, sizeof *e + len + 1);
  if (!e) return NULL;
  e->hash = hash;
  memcpy(e->name, name, len + 1);
  return e;
}

/* The owner's entry for name by its hash, made when new; NULL when memory is short. */
static fn_entry *entry_find(slot *sl, const char *name) {
  uint32_t h = hash_of(name);
  for (uint32_t i = h & (CAP - 1);; i = (i + 1) & (CAP - 1)) {
    /* relaxed: the owner made every entry it can see here */
    fn_entry *e = atomic_load_explicit(&sl->table[i], memory_order_relaxed);
    if (e && e->hash == h && strcmp(e->name, name) == 0) return e;
    if (e) continue;
    int other = sl->used >= CAP * 3 / 4;
    _Atomic(fn_entry *) *at = other ? &sl->table[CAP] : &sl->table[i];
    if (other && (e = atomic_load_explicit(at, memory_order_relaxed))) return e;
    if (!(e = entry_new(other ? "(other)" : name, h))) return NULL;
    sl->used += !other;
    /* release: a reader that sees the pointer sees the entry's name and zeroed counts */
    atomic_store_explicit(at, e, memory_order_release);
    return e;
  }
}

/* entry_find, with the entries found before tried first: by the site of name, which
 * names one text, or with no site (0), the one found last by its name. "(other)" stands
 * for many names: it is never kept. */
static fn_entry *entry_of(slot *sl, const char *name, uint32_t site) {
  if (site) {
    size_t i = site & (SITE_CACHE - 1);
    if (sl->by_site[i].site == site) return sl->by_site[i].entry;
    fn_entry *found = entry_find(sl, name);
    if (found && found != atomic_load_explicit(&sl->table[CAP], memory_order_relaxed)) {
      sl->by_site[i].site = site;
      sl->by_site[i].entry = found;
    }
    return found;
  }
  if (sl->last && strcmp(sl->last->name, name) == 0) return sl->last;
  fn_entry *found = entry_find(sl, name);
  if (found && found != atomic_load_explicit(&sl->table[CAP], memory_order_relaxed))
    sl->last = found;
  return found;
}

static int bucket_of(uint64_t stamps) {
  if (stamps < 4) return (int)stamps;
  int octave = 63 - __builtin_clzll(stamps);
  int b = (octave - 1) * 4 + (int)((stamps >> (octave - 2)) & 3);
  return b < NBUCKETS ? b : NBUCKETS - 1;
}

/* The middle of bucket b, in stamps. */
static double bucket_mid(int b) {
  if (b < 4) return b;
  int octave = b / 4 + 1, sub = b % 4;
  return ldexp(4.5 + sub, octave - 2);
}

static void record(slot *sl, const cray__task *t, int failed, uint64_t now) {
  fn_entry *e = entry_of(sl, t->name ? t->name : "(unnamed)", t->name ? t->site : 0);
  if (!e) return;
  add64(&e->calls, 1);
  if (failed) add64(&e->failed, 1);
  if (t->retries) add64(&e->retries, (uint64_t)t->retries);
  if (!t->started_at) return; /* it never started: no run time */
  /* Stamps of two cores can differ by a little: a difference below 0 counts as 0. */
  uint64_t run = now > t->started_at ? now - t->started_at : 0;
  add64(&e->ran, 1);
  add64(&e->run, run);
  uint64_t waited = t->started_at > t->submitted_at ? t->started_at - t->submitted_at : 0;
  uint64_t deps = t->dep_wait < waited ? t->dep_wait : waited;
  add64(&e->queued, waited - deps);
  add64(&e->deps, deps);
  _Atomic uint32_t *b = &e->hist[bucket_of(run)];
  /* relaxed: one writer, as add64 */
  atomic_store_explicit(b, atomic_load_explicit(b, memory_order_relaxed) + 1, memory_order_relaxed);
}

void cray__fstats_task_end(cray__fstats *f, int slot_index, const cray__task *t, int failed,
                           uint64_t now) {
  if (slot_index > 0) {
    record(&f->slots[slot_index], t, failed, now);
    return;
  }
  pthread_mutex_lock(&f->mu);
  record(&f->slots[0], t, failed, now);
  pthread_mutex_unlock(&f->mu);
}

void cray__fstats_busy(cray__fstats *f, int slot_index, uint64_t since, uint64_t now) {
  if (now > since) add64(&f->slots[slot_index].busy, now - since); /* as in record */
}

void cray__fstats_actor(cray__fstats *f, int event) {
  /* relaxed: a counter, read only to be shown */
  atomic_fetch_add_explicit(&f->actors[event], 1, memory_order_relaxed);
}

/* ---- reading ---- */

typedef struct merged {
  cray__fstats_fn fn;
  uint64_t run, queued, deps; /* stamps */
  uint32_t hist[NBUCKETS];
} merged;

static double percentile(const uint32_t *hist, uint64_t n, double q) {
  uint64_t rank = (uint64_t)ceil(q * (double)n), seen = 0;
  for (int b = 0; b < NBUCKETS; b++)
    if ((seen += hist[b]) >= rank && rank) return bucket_mid(b);
  return 0;
}

static int by_total(const void *a, const void *b) {
  const cray__fstats_fn *x = a, *y = b;
  if (x->total != y->total) return x->total < y->total ? 1 : -1;
  return strcmp(x->name, y->name);
}

static void merge_entry(merged *m, const fn_entry *e) {
  /* relaxed: each counter is read whole; the caller's own results came through the
   * store's locks, after these stores */
  m->fn.calls += atomic_load_explicit(&e->calls, memory_order_relaxed);
  m->fn.failed += atomic_load_explicit(&e->failed, memory_order_relaxed);
  m->fn.retries += atomic_load_explicit(&e->retries, memory_order_relaxed);
  m->fn.ran += atomic_load_explicit(&e->ran, memory_order_relaxed);
  m->run += atomic_load_explicit(&e->run, memory_order_relaxed);
  m->queued += atomic_load_explicit(&e->queued, memory_order_relaxed);
  m->deps += atomic_load_explicit(&e->deps, memory_order_relaxed);
  for (int b = 0; b < NBUCKETS; b++)
    m->hist[b] += atomic_load_explicit(&e->hist[b], memory_order_relaxed);
}

int cray__fstats_read(cray__fstats *f, cray__fstats_report *r) {
  *r = (cray__fstats_report){.workers = f->workers, .elapsed = cray__now() - f->born};
  /* Stamps a second: the time-stamp counter's rate, as measured since f was made. */
  uint64_t stamps = cray__fstats_stamp() - f->born_stamp;
  double rate = stamp_kind() == STAMP_NS || r->elapsed <= 0 || !stamps
                    ? 1e9
                    : (double)stamps / r->elapsed;
  size_t n = 0, cap = 16;
  merged *m = cray__malloc(cap * sizeof *m);
  r->busy = cray__calloc((size_t)f->workers + 1, sizeof *r->busy);
  if (!m || !r->busy) goto nomem;
  for (int i = 0; i <= f->workers; i++) {
    for (int k = 0; k <= CAP; k++) {
      /* acquire: pairs with entry_of's release, so the entry is whole */
      const fn_entry *e = atomic_load_explicit(&f->slots[i].table[k], memory_order_acquire);
      if (!e) continue;
      size_t j = 0;
      while (j < n && strcmp(m[j].fn.name, e->name) != 0) j++;
      if (j == n) {
        if (n == cap) {
          merged *bigger = cray__realloc(m, (cap *= 2) * sizeof *m);
          if (!bigger) goto nomem;
          m = bigger;
        }
        memset(&m[n], 0, sizeof m[n]);
        m[n++].fn.name = e->name;
      }
      merge_entry(&m[j], e);
    }
  }
  r->fns = cray__malloc((n ? n : 1) * sizeof *r->fns);
  if (!r->fns) goto nomem;
  for (size_t j = 0; j < n; j++) {
    cray__fstats_fn *fn = &m[j].fn;
    fn->total = (double)m[j].run / rate;
    fn->mean = fn->ran ? fn->total / (double)fn->ran : 0;
    fn->queued = (double)m[j].queued / rate;
    fn->deps = (double)m[j].deps / rate;
    fn->p50 = percentile(m[j].hist, fn->ran, 0.50) / rate;
    fn->p99 = percentile(m[j].hist, fn->ran, 0.99) / rate;
    r->fns[j] = *fn;
  }
  r->nfns = n;
  qsort(r->fns, n, sizeof *r->fns, by_total);
  cray__free(m);
  for (int e = 0; e < CRAY__ACTOR_EVENTS; e++)
    r->actors[e] = atomic_load_explicit(&f->actors[e], memory_order_relaxed); /* shown only */
  for (int i = 1; i <= f->workers; i++) {
    /* relaxed: shown only */
    double busy = (double)atomic_load_explicit(&f->slots[i].busy, memory_order_relaxed) / rate;
    r->busy[i - 1] = r->elapsed > 0 ? fmin(1, busy / r->elapsed) : 0;
  }
  return 0;
nomem:
  cray__free(m);
  cray__fstats_report_free(r);
  return CRAY_ENOMEM;
}

void cray__fstats_report_free(cray__fstats_report *r) {
  cray__free(r->fns);
  cray__free(r->busy);
  *r = (cray__fstats_report){0};
}
