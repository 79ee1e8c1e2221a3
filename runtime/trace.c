/*
 * trace.c: see trace.h for the design.
 *
 * A ring is written by one thread at a time and read by cray__trace_write's caller at
 * any time, as a seqlock: the writer of event h (while head == h) issues a release fence,
 * stores the slot's words (relaxed atomics, so a concurrent reader is no data race) and
 * publishes head = h + 1 with a release store. The reader loads head (acquire), copies
 * the slots it may hold, issues an acquire fence and loads head again: a slot whose
 * event could have been overwritten meanwhile (its index + RING <= the second head) is
 * thrown away. Slots hold event index + 1 in their first word as a check as well.
 *
 * Rings live as long as the process, in one list; a thread takes one on its first event
 * while recording and gives it back when it exits (a pthread key's destructor), so the
 * next new thread reuses it with its events kept: the list stays as long as the most
 * threads that recorded at once. Each event carries the track (tid) it belongs to.
 */
#include "trace.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "alloc.h"
#include "fstats.h"
#include "actor.h"
#include "sched.h"
#include "task.h"
#include "wait.h"

_Atomic int cray__tracing;

#define WORDS 8

typedef struct slot {
  _Atomic uint64_t w[WORDS];
} slot;

typedef struct ring {
  _Atomic uint64_t head;
  _Atomic int owned;
  struct ring *next; /* set before it is published on `rings`, never changed */
  uint64_t cap;      /* slots in ev: a power of two, set before it is published */
  slot ev[];
} ring;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; /* making rings, adding names */
static ring *_Atomic rings;
static int started;                 /* under mu: recording started once */
static _Atomic uint64_t ring_cap = CRAY__TRACE_RING; /* what new rings get */
static _Atomic uint64_t epoch_stamp; /* the stamp when recording first started */
static _Atomic uint64_t epoch_bits;  /* and the double cray__now() then */
static _Atomic int next_other;      /* "thread N" */
static pthread_key_t ring_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static _Thread_local ring *mine;
static _Thread_local int my_tid;

enum { TID_DRIVER = 1, TID_SPILL = 2, TID_WORKER = 10, TID_OTHER = 1000 };

void cray__trace_thread(int role, int index) {
  my_tid = role == CRAY__TRACE_DRIVER ? TID_DRIVER
         : role == CRAY__TRACE_SPILL  ? TID_SPILL
         : role == CRAY__TRACE_WORKER ? TID_WORKER + index
                                      : 0;
}

static void give_back(void *r) {
  /* release: the next owner sees head and the slots as this thread left them */
  atomic_store_explicit(&((ring *)r)->owned, 0, memory_order_release);
}

static void make_key(void) { (void)pthread_key_create(&ring_key, give_back); }

/* The calling thread's ring: its own, a free one, or a new one; NULL when memory is short. */
static ring *my_ring(void) {
  if (mine) return mine;
  (void)pthread_once(&key_once, make_key);
  /* acquire: a ring published on the list is seen whole */
  for (ring *r = atomic_load_explicit(&rings, memory_order_acquire); r; r = r->next) {
    int free_ = 0;
    /* acquire: what its last owner wrote is seen before this thread writes on */
    if (atomic_compare_exchange_strong_explicit(&r->owned, &free_, 1, memory_order_acquire,
                                                memory_order_relaxed)) {
      mine = r;
      break;
    }
  }
  if (!mine) {
    /* relaxed: each ring keeps its own size, so any value read here is safe */
    uint64_t cap = atomic_load_explicit(&ring_cap, memory_order_relaxed);
    ring *r = mmap(NULL, sizeof *r + cap * sizeof(slot), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED) return NULL;
    r->cap = cap;
    atomic_init(&r->owned, 1);
    pthread_mutex_lock(&mu);
    r->next = atomic_load_explicit(&rings, memory_order_relaxed); /* writers hold mu */
    /* release: readers that find r see it initialised */
    atomic_store_explicit(&rings, r, memory_order_release);
    pthread_mutex_unlock(&mu);
    mine = r;
  }
  (void)pthread_setspecific(ring_key, mine);
  /* relaxed: a counter that only names threads */
  if (!my_tid) my_tid = TID_OTHER + atomic_fetch_add_explicit(&next_other, 1, memory_order_relaxed);
  return mine;
}

uint64_t cray__trace_stamp(void) { return cray__fstats_stamp(); }

/* Stamps to nanoseconds since the epoch: the rate is how far the stamps and the clock
 * went from the epoch to now. */
typedef struct to_ns {
  uint64_t from;
  double rate;
} to_ns;

static to_ns rate_now(void) {
  /* relaxed: set once before cray__tracing is turned on, read after it was seen on */
  uint64_t b = atomic_load_explicit(&epoch_bits, memory_order_relaxed);
  to_ns r = {atomic_load_explicit(&epoch_stamp, memory_order_relaxed), 1.0};
  double born;
  memcpy(&born, &b, sizeof born);
  uint64_t stamp = cray__fstats_stamp();
  double secs = cray__now() - born;
  if (stamp > r.from && secs > 0) r.rate = secs * 1e9 / (double)(stamp - r.from);
  return r;
}

static uint64_t ns(const to_ns *r, uint64_t stamp) {
  return stamp > r->from ? (uint64_t)((double)(stamp - r->from) * r->rate) : 0;
}

int cray__trace_start(void) {
  pthread_mutex_lock(&mu);
  int rc = 0;
  if (!started) {
    started = 1;
    const char *env = getenv("CRAY_TIMELINE_EVENTS");
    long want = env ? strtol(env, NULL, 10) : 0;
    if (want > 0) {
      uint64_t cap = 64;
      while (cap * 2 <= (uint64_t)want && cap < CRAY__TRACE_RING) cap *= 2;
      atomic_store_explicit(&ring_cap, cap, memory_order_relaxed); /* as in my_ring */
    }
    double now = cray__now();
    uint64_t b;
    memcpy(&b, &now, sizeof b);
    atomic_store_explicit(&epoch_bits, b, memory_order_relaxed); /* as in rate_now */
    atomic_store_explicit(&epoch_stamp, cray__fstats_stamp(), memory_order_relaxed);
  }
  pthread_mutex_unlock(&mu);
  if (rc == 0) {
    /* the thread that starts recording is the driver, unless it is a worker */
    if (!my_tid) my_tid = TID_DRIVER;
    /* release: the epoch is seen by the hooks that find this on */
    atomic_store_explicit(&cray__tracing, 1, memory_order_release);
  }
  return rc;
}

void cray__trace_stop(void) {
  atomic_store_explicit(&cray__tracing, 0, memory_order_relaxed); /* as CRAY__TRACING */
}

/* Interned names: open addressing over NAMES slots (0 unused: no name), each with its
 * text inline (cut to NAME_MAX - 1 bytes), in static storage, so nothing is allocated or
 * ever freed (the rings' memory is mapped for the same reason: a module unloaded at exit
 * leaves nothing that looks leaked, and no thread can be left writing into freed memory).
 * A slot is published by a release store of its hash, after its text; lookups take no
 * lock, additions (once per name) take mu. Past half full, new names are not kept (0). */
#define NAMES 4096
#define NAME_MAX 96
static _Atomic uint32_t name_hash[NAMES]; /* 0: free */
static char name_text[NAMES][NAME_MAX];

static uint32_t hash_of(const char *text) {
  uint32_t h = 2166136261u;
  for (const char *c = text; *c && c - text < NAME_MAX - 1; c++) h = (h ^ (unsigned char)*c) * 16777619u;
  return h | 1;
}

static int same(uint32_t i, const char *text) {
  return strncmp(name_text[i], text, NAME_MAX - 1) == 0;
}

static uint32_t intern(const char *text) {
  if (!text) return 0;
  uint32_t h = hash_of(text);
  for (int locked = 0; locked < 2; locked++) {
    if (locked) pthread_mutex_lock(&mu);
    for (uint32_t k = 0, i = h % (NAMES - 1) + 1; k < NAMES / 2; k++, i = i % (NAMES - 1) + 1) {
      /* acquire: a slot's text is seen whole once its hash is */
      uint32_t s = atomic_load_explicit(&name_hash[i], memory_order_acquire);
      if (s == h && same(i, text)) {
        if (locked) pthread_mutex_unlock(&mu);
        return i;
      }
      if (s) continue;
      if (!locked) break; /* not there: add it under mu */
      strncpy(name_text[i], text, NAME_MAX - 1);
      /* release: the text is written before the slot is seen */
      atomic_store_explicit(&name_hash[i], h, memory_order_release);
      pthread_mutex_unlock(&mu);
      return i;
    }
    if (locked) pthread_mutex_unlock(&mu);
  }
  return 0;
}

const char *cray__trace_name(uint32_t name) {
  /* acquire: as in intern */
  return name && name < NAMES && atomic_load_explicit(&name_hash[name], memory_order_acquire)
             ? name_text[name]
             : "";
}

/* Packs and writes one event into the calling thread's ring. Words: 0 the event's index
 * + 1; 1 type, aux, tid and name; 2 name2, ptr or the actor's id (lo); 3 t0; 4 t1;
 * 5-6 the task's id; 7 bytes, or the actor's id (hi) for a run. */
static void put(int type, int aux, uint32_t name, uint64_t w2, uint64_t t0, uint64_t t1,
                const cray_id *id, uint64_t w7) {
  /* relaxed: recording just stopped is no harm; stamps need nothing set first */
  if (!atomic_load_explicit(&cray__tracing, memory_order_relaxed)) return;
  ring *r = my_ring();
  if (!r) return;
  /* relaxed: only this thread writes head */
  uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
  slot *e = &r->ev[h & (r->cap - 1)];
  /* release: a reader that sees any word below sees head at least h (trace.c's top) */
  atomic_thread_fence(memory_order_release);
  uint64_t w[WORDS] = {
      h + 1,
      (uint64_t)(uint8_t)type | (uint64_t)(uint8_t)aux << 8 | (uint64_t)(uint16_t)my_tid << 16 |
          (uint64_t)name << 32,
      w2,
      t0,
      t1,
      id ? id->hi : 0,
      id ? id->lo : 0,
      w7,
  };
  for (int i = 0; i < WORDS; i++)
    atomic_store_explicit(&e->w[i], w[i], memory_order_relaxed); /* ordered by the fences */
  /* release: the slot's words are written before a reader sees head past them */
  atomic_store_explicit(&r->head, h + 1, memory_order_release);
}

/* t's interned name: kept in t at submission (before other threads see t); a task
 * submitted before recording started is interned at each event instead. */
static uint32_t name_of(const cray__task *t) { return t->trace_name ? t->trace_name : intern(t->name); }

static uint64_t arg_bytes(const cray__task *t) { return t->args ? t->args->len : 0; }

/* The recorder's name for a runtime's site (sites.h): a map from site to name, each slot
 * tagged with the runtime it was made for, so a task's name is interned once per function
 * and runtime, not at every submission. Slots are written by whoever finds them stale
 * (any two writers store the same name). */
#define NMAP 4096
static _Atomic uint64_t site_map[NMAP]; /* tag << 32 | name */

static uint32_t name_of_site(const cray__task *t, uint64_t nonce, uint32_t site) {
  uint32_t tag = (uint32_t)(nonce ^ nonce >> 32) | 1;
  if (!site || site >= NMAP) return intern(t->name);
  /* relaxed: a slot is one word, whole; a stale one is only a miss */
  uint64_t e = atomic_load_explicit(&site_map[site], memory_order_relaxed);
  if ((uint32_t)(e >> 32) == tag) return (uint32_t)e;
  uint32_t name = intern(t->name);
  if (name) atomic_store_explicit(&site_map[site], (uint64_t)tag << 32 | name, memory_order_relaxed);
  return name;
}

void cray__trace_submit(cray__task *t, uint64_t nonce, uint32_t site) {
  t->trace_name = name_of_site(t, nonce, site);
  put(CRAY__TEV_SUBMIT, 0, name_of(t), 0, t->submitted_at, 0, &t->id, arg_bytes(t));
}

void cray__trace_run(cray__task *t, uint64_t start, uint64_t end, int rc) {
  put(CRAY__TEV_RUN, rc, name_of(t), t->actor ? t->actor->id.lo : 0, start, end, &t->id,
      t->actor ? t->actor->id.hi : 0);
}

void cray__trace_end(cray__task *t, int failed, const void *error_blob, size_t result_bytes,
                     uint64_t now) {
  int outcome = failed ? CRAY__TRACE_FAILED : CRAY__TRACE_FINISHED;
  uint32_t kind = 0;
  if (error_blob) {
    const cray__blob *b = error_blob;
    cray_view v = {b->data, b->len, b->count, (void *)b};
    cray_error info;
    if (cray_error_info(&v, &info) == 0) {
      kind = intern(info.kind);
      if (strcmp(info.kind, "cancelled") == 0) outcome = CRAY__TRACE_CANCELLED;
    }
  }
  put(CRAY__TEV_END, outcome, name_of(t), kind, now, 0, &t->id, result_bytes);
}

void cray__trace_release(cray__task *t) {
  put(CRAY__TEV_RELEASE, 0, name_of(t), 0, cray__fstats_stamp(), 0, &t->id, 0);
}

void cray__trace_wait(cray__task *t, const char *fn) {
  put(CRAY__TEV_WAIT, 0, name_of(t), (uint64_t)(uintptr_t)fn, cray__fstats_stamp(), 0, &t->id, 0);
}

void cray__trace_block(uint64_t start, const char *fn) {
  put(CRAY__TEV_BLOCK, 0, 0, (uint64_t)(uintptr_t)fn, start, cray__fstats_stamp(), NULL, 0);
}

void cray__trace_spill(uint64_t start, size_t n, uint64_t bytes) {
  put(CRAY__TEV_SPILL, n > 255 ? 255 : (int)n, 0, 0, start, cray__fstats_stamp(), NULL, bytes);
}

void cray__trace_restore(uint64_t start, const cray_id *id, uint64_t bytes) {
  put(CRAY__TEV_RESTORE, 0, 0, 0, start, cray__fstats_stamp(), id, bytes);
}

static void unpack(const uint64_t *w, const to_ns *r, cray__tev *e) {
  memset(e, 0, sizeof *e);
  e->type = (int)(w[1] & 0xff);
  e->aux = (int)(w[1] >> 8 & 0xff);
  e->tid = (int)(w[1] >> 16 & 0xffff);
  e->name = (uint32_t)(w[1] >> 32);
  e->t0 = ns(r, w[3]);
  e->t1 = w[4] ? ns(r, w[4]) : 0;
  e->id = (cray_id){w[5], w[6]};
  e->bytes = w[7];
  if (e->type == CRAY__TEV_WAIT || e->type == CRAY__TEV_BLOCK) e->ptr = (const char *)(uintptr_t)w[2];
  else if (e->type == CRAY__TEV_RUN) e->actor = (cray_id){w[7], w[2]}, e->bytes = 0;
  else e->name2 = (uint32_t)w[2];
}

int cray__trace_snapshot(cray__tev **out, size_t *n, uint64_t *dropped) {
  *out = NULL, *n = 0, *dropped = 0;
  size_t vcap = 0;
  cray__tev *v = NULL;
  uint64_t(*buf)[WORDS] = cray__malloc(sizeof(uint64_t[WORDS]) * CRAY__TRACE_RING);
  if (!buf) return CRAY_ENOMEM;
  to_ns rate = rate_now();
  /* acquire: as in my_ring */
  for (ring *r = atomic_load_explicit(&rings, memory_order_acquire); r; r = r->next) {
    /* acquire: the slots below head are written */
    uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);
    uint64_t cap = r->cap;
    uint64_t first = h > cap ? h - cap : 0;
    for (uint64_t i = first; i < h; i++)
      for (int k = 0; k < WORDS; k++)
        buf[i - first][k] = atomic_load_explicit(&r->ev[i & (cap - 1)].w[k], memory_order_relaxed);
    /* acquire: a slot overwritten while it was copied shows in head below */
    atomic_thread_fence(memory_order_acquire);
    uint64_t h2 = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t keep = h2 >= cap ? h2 - cap + 1 : 0;
    if (keep < first) keep = first;
    *dropped += keep;
    if (*n + (h - keep) > vcap) {
      size_t ncap = (*n + (h - keep)) * 2 + 64;
      cray__tev *nv = cray__realloc(v, ncap * sizeof *nv);
      if (!nv) {
        cray__free(v);
        cray__free(buf);
        return CRAY_ENOMEM;
      }
      v = nv, vcap = ncap;
    }
    for (uint64_t i = keep; i < h; i++) {
      const uint64_t *w = buf[i - first];
      if (w[0] != i + 1) continue; /* not the event it should be: torn */
      unpack(w, &rate, &v[(*n)++]);
    }
  }
  cray__free(buf);
  *out = v;
  return 0;
}

uint64_t cray__trace_ring_events(void) {
  return atomic_load_explicit(&ring_cap, memory_order_relaxed); /* as in my_ring */
}

void cray__trace_tid_name(int tid, char *buf, size_t len, int *sort) {
  if (tid == TID_DRIVER) snprintf(buf, len, "driver"), *sort = 0;
  else if (tid == TID_SPILL) snprintf(buf, len, "spill"), *sort = 100000;
  else if (tid >= TID_WORKER && tid < TID_OTHER) snprintf(buf, len, "worker %d", tid - TID_WORKER), *sort = tid;
  else snprintf(buf, len, "thread %d", tid - TID_OTHER), *sort = 200000 + tid;
}

int cray__trace_write(FILE *f, int rank, uint64_t *events, uint64_t *dropped) {
  cray__tev *ev;
  size_t n;
  int rc = cray__trace_snapshot(&ev, &n, dropped);
  *events = n;
  for (size_t i = 0; i < n; i++) ev[i].pid = rank >= 0 ? rank + 1 : 1;
  if (rc == 0) rc = cray__trace_json(f, ev, n, *dropped, rank >= 0);
  cray__free(ev);
  return rc;
}

double cray__trace_wall(void) {
  /* relaxed: as in rate_now; 0 until recording first started */
  uint64_t b = atomic_load_explicit(&epoch_bits, memory_order_relaxed);
  if (!b) return 0;
  double born;
  memcpy(&born, &b, sizeof born);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9 - (cray__now() - born);
}

uint32_t cray__trace_intern(const char *text) { return intern(text); }

int cray__trace_write_job(FILE *f, cray__trace_rank *ranks, int nranks, uint64_t *events,
                          uint64_t *dropped) {
  double base = 0;
  size_t total = 0;
  *dropped = 0;
  for (int k = 0; k < nranks; k++) {
    total += ranks[k].n;
    *dropped += ranks[k].dropped;
    if (ranks[k].wall > 0 && (base == 0 || ranks[k].wall < base)) base = ranks[k].wall;
  }
  cray__tev *ev = cray__malloc((total + 1) * sizeof *ev);
  if (!ev) return CRAY_ENOMEM;
  size_t n = 0;
  for (int k = 0; k < nranks; k++) { /* on one clock: the earliest start is 0 */
    uint64_t shift = ranks[k].wall > base ? (uint64_t)((ranks[k].wall - base) * 1e9) : 0;
    for (size_t i = 0; i < ranks[k].n; i++) {
      cray__tev *e = &ev[n++];
      *e = ranks[k].ev[i];
      e->pid = k + 1;
      e->t0 += shift;
      if (e->t1) e->t1 += shift;
    }
  }
  *events = n;
  int rc = cray__trace_json(f, ev, n, *dropped, 1);
  cray__free(ev);
  return rc;
}
