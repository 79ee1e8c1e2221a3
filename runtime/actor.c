/*
 * actor.c: see actor.h for the model and the locks.
 *
 * The home worker serves an actor when it pops it from its ready list: it applies the
 * control bits first (collect, death, restart), then starts calls while a slot is free,
 * up to a batch. An actor is on the ready list at most once, and not while it is served
 * (`ready`); ready_locked puts it there whenever it has control to apply, or calls and a
 * free slot. While init runs no other
 * call starts, so every call sees a made instance.
 *
 * A started call is running (only while its worker runs it, so never seen here) or
 * suspended (waiting in get, wait or sleep, or for its ObjectRef arguments). Death and
 * restart abandon the suspended ones: their wait is disarmed and the executor drops
 * their coroutine; a restart sends them again while they have retries left.
 */
#include "actor.h"

#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "cluster.h"
#include "runtime.h"
#include "sched_internal.h"
#include "wire.h"

enum {
  CTL_KILL = 1,        /* cray.kill: die */
  CTL_RESTART = 2,     /* cray.kill with no_restart = false: restart if allowed, else die */
  CTL_EXIT = 4,        /* cray.exit_actor's call returned: die */
  CTL_LOST = 8,        /* the home state was lost: restart if allowed, else die */
  CTL_ERROR = 128,     /* a method raised, with restart_on_error: restart if allowed, else die */
  CTL_INIT_FAILED = 16,/* init raised: die, with that error as the cause */
  CTL_COLLECT = 32,    /* the last handle went: free it */
  CTL_SHUTDOWN = 64,   /* the runtime stops: die */
};

static const char *const reason_names[] = {
    [CRAY__DIED_KILLED] = "killed",
    [CRAY__DIED_EXITED] = "exited",
    [CRAY__DIED_INIT_ERROR] = "init_error",
    [CRAY__DIED_OUT_OF_MEMORY] = "out_of_memory",
    [CRAY__DIED_SHUTDOWN] = "shutdown",
    [CRAY__DIED_COLLECTED] = "collected",
    [CRAY__DIED_ERROR] = "error",
};

static const char *const reason_text[] = {
    [CRAY__DIED_KILLED] = "it was killed with cray.kill",
    [CRAY__DIED_EXITED] = "it called cray.exit_actor",
    [CRAY__DIED_INIT_ERROR] = "its init raised an error (the cause)",
    [CRAY__DIED_OUT_OF_MEMORY] =
        "its worker's Lua state ran out of memory (--worker-memory) and no restarts were left",
    [CRAY__DIED_SHUTDOWN] = "the runtime shut down",
    [CRAY__DIED_COLLECTED] = "no handle to it was left",
    [CRAY__DIED_ERROR] =
        "a method raised an error (the cause) and no restarts were left (restart_on_error)",
};

/* The home of a, for its home's own thread (an actor does not move while it is served or
 * has a call started, and only its home moves it). */
static worker *home_of(cray__sched *s, const cray__actor *a) {
  /* relaxed: the home's thread wrote it, or read it under the lock it was written under */
  return &s->workers[atomic_load_explicit(&a->home, memory_order_relaxed)];
}

/* Locks a's home from any thread and returns it: a move writes `home` under both the old
 * and the new home's locks, so the home read again under the lock taken is a's home. */
static worker *lock_home(cray__sched *s, cray__actor *a) {
  for (;;) {
    /* relaxed: the check under the lock decides */
    worker *w = &s->workers[atomic_load_explicit(&a->home, memory_order_relaxed)];
    pthread_mutex_lock(&w->mu);
    /* relaxed: the lock orders it */
    if (atomic_load_explicit(&a->home, memory_order_relaxed) == w->index) return w;
    pthread_mutex_unlock(&w->mu);
  }
}

/* a's control bits. Relaxed: set under the home's lock, which orders them for its other
 * readers; the serving thread's read between calls is ordered by the call it popped
 * (see cray__actor_serve). */
static int ctl_of(cray__actor *a) { return atomic_load_explicit(&a->ctl, memory_order_relaxed); }

/* Adds control bits to a. Under the home's lock. */
static void add_ctl(cray__actor *a, int ctl) {
  atomic_fetch_or_explicit(&a->ctl, ctl, memory_order_relaxed); /* relaxed: as ctl_of */
}

/* ---- the mailbox ----
 *
 * Senders push calls onto the actor's queue (mailq.h) and take no lock. Its consumer, the
 * one thread that may pop, peek or mark it (and use `mhead`, the calls put back before
 * it), is the thread serving the actor while `ready` is set and the actor is alive, and
 * otherwise the holder of the home's lock: nobody else takes calls from a listed actor
 * (nor while it moves, as `ready` stays set), and only the serving thread makes it dead.
 *
 * The idle mark is set, under the lock, when the actor is not listed nor served, could
 * start a call, and its queue is empty; the sender whose push takes it off lists the
 * actor, under the lock. Otherwise a send is one exchange and one store: a listed or
 * served actor takes the call before its serving stops, and one that cannot start a call
 * now (init runs, or max_concurrency are started) is listed by whatever frees a slot
 * (call_end), which finds the call queued. A dead actor's queue stays marked, so every
 * send to it takes the lock and fails at once. Calls from one sender are pushed in order
 * and popped in order, so they start in order. */

static cray__task *task_of(cray__mailq_node *n) {
  return n ? (cray__task *)(void *)((char *)n - offsetof(cray__task, mail)) : NULL;
}

/* The next call to start: a put-back one, else the queue's oldest; NULL when there is
 * none yet. The consumer's. */
static cray__task *take_call(cray__actor *a) {
  cray__task *t = a->mhead;
  if (!t) return task_of(cray__mailq_pop(&a->mail));
  if (!(a->mhead = t->next)) a->mtail = NULL;
  return t;
}

/* Puts t back at the front, to be taken first. The consumer's. */
static void put_back(cray__actor *a, cray__task *t) {
  if (!(t->next = a->mhead)) a->mtail = t;
  a->mhead = t;
}

/* Takes every call off dead actor a, in order, and marks its queue idle again, so the
 * next sender comes to fail its own call. Under the home's lock, which it lets go while
 * a push is under way (it cannot be marked before that push has linked its call). */
static cray__task *take_dead(worker *w, cray__actor *a) {
  cray__task *head = a->mhead, *tail = a->mtail, *t;
  a->mhead = a->mtail = NULL;
  for (;;) {
    while ((t = task_of(cray__mailq_pop(&a->mail)))) {
      t->next = NULL;
      if (tail) tail->next = t;
      else head = t;
      tail = t;
    }
    if (cray__mailq_mark_idle(&a->mail)) return head;
    pthread_mutex_unlock(&w->mu);
    sched_yield();
    pthread_mutex_lock(&w->mu);
  }
}

/* Lists a, which is not listed, on its home's ready list. Under the home's lock. */
static void list_locked(worker *w, cray__actor *a) {
  a->ready = 1;
  a->rnext = NULL;
  if (w->rtail) w->rtail->rnext = a;
  else w->rhead = a;
  w->rtail = a;
  cray__sched_note_work(w);
  cray__sched_poke(w);
}

/* Puts a on its home's ready list when it has control to apply, or a call to start and a
 * free slot; else marks its queue idle when it could start one. Under the home's lock. */
static void ready_locked(worker *w, cray__actor *a) {
  if (a->ready) return;
  if (ctl_of(a)) {
    list_locked(w, a);
    return;
  }
  /* A dead actor's queue holds only what a sender that found the mark pushed; that sender
   * comes for it (cray__actor_send). One that cannot start a call is listed by call_end. */
  if (a->state != CRAY__ACTOR_ALIVE || a->initializing || a->running >= a->max_concurrency)
    return;
  /* Not marked: a call is there, or one is being pushed (listed, it is served soon). */
  if (a->mhead || !cray__mailq_mark_idle(&a->mail)) list_locked(w, a);
}

static void set_ctl(cray__sched *s, cray__actor *a, int ctl) {
  worker *w = lock_home(s, a);
  add_ctl(a, ctl);
  ready_locked(w, a);
  pthread_mutex_unlock(&w->mu);
}

static void fail_all(cray__sched *s, cray__actor *a, cray__task *calls);

/* ---- names ---- */

typedef struct name_node {
  struct name_node *next;
  cray__entry *entry; /* one reference */
  char name[];
} name_node;

static size_t name_hash(const char *name) {
  size_t h = 1469598103934665603u;
  for (const unsigned char *p = (const unsigned char *)name; *p; p++) h = (h ^ *p) * 1099511628211u;
  return h;
}

void cray__actor_names_init(cray__actor_names *n) {
  pthread_mutex_init(&n->mu, NULL);
  n->buckets = NULL;
  n->nbuckets = n->count = 0;
}

static name_node **name_slot(cray__actor_names *n, const char *name) {
  if (!n->nbuckets) return NULL;
  name_node **p = &n->buckets[name_hash(name) & (n->nbuckets - 1)];
  while (*p && strcmp((*p)->name, name) != 0) p = &(*p)->next;
  return p;
}

/* Adds name -> e (taking a reference to e); 0, or CRAY_ENOMEM. Under the names lock. */
static int name_add(cray__actor_names *n, const char *name, cray__entry *e) {
  if (n->count >= n->nbuckets) {
    size_t nb = n->nbuckets ? n->nbuckets * 2 : 16;
    name_node **b = cray__calloc(nb, sizeof *b);
    if (!b) return CRAY_ENOMEM;
    for (size_t i = 0; i < n->nbuckets; i++) {
      for (name_node *x = n->buckets[i], *next; x; x = next) {
        next = x->next;
        size_t at = name_hash(x->name) & (nb - 1);
        x->next = b[at];
        b[at] = x;
      }
    }
    cray__free(n->buckets);
    n->buckets = b;
    n->nbuckets = nb;
  }
  size_t len = strlen(name) + 1;
  name_node *x = cray__malloc(sizeof *x + len);
  if (!x) return CRAY_ENOMEM;
  memcpy(x->name, name, len);
  x->entry = e;
  cray__store_retain(e);
  size_t at = name_hash(name) & (n->nbuckets - 1);
  x->next = n->buckets[at];
  n->buckets[at] = x;
  n->count++;
  return 0;
}

/* Removes a's name; the caller releases the entry it returns (or NULL). */
static cray__entry *name_remove(cray__sched *s, cray__actor *a) {
  if (!a->name) return NULL;
  cray__actor_names *n = &s->names;
  cray__entry *e = NULL;
  pthread_mutex_lock(&n->mu);
  name_node **p = name_slot(n, a->name);
  if (p && *p && (*p)->entry == a->entry) {
    name_node *x = *p;
    *p = x->next;
    n->count--;
    e = x->entry;
    cray__free(x);
  }
  pthread_mutex_unlock(&n->mu);
  return e;
}

int cray__actor_count_pending(cray__actor *a, cray__task *t) {
  if (a->max_pending_calls <= 0) return 0;
  /* Relaxed: the count bounds how many calls exist, it orders no other memory. */
  int before = atomic_fetch_add_explicit(&a->pending_calls, 1, memory_order_relaxed);
  if (before >= a->max_pending_calls) {
    atomic_fetch_sub_explicit(&a->pending_calls, 1, memory_order_relaxed);
    return 1;
  }
  t->counts_pending = 1;
  return 0;
}

cray__entry *cray__actor_lookup(cray__sched *s, const char *name) {
  cray__actor_names *n = &s->names;
  pthread_mutex_lock(&n->mu);
  name_node **p = name_slot(n, name);
  cray__entry *e = p && *p ? (*p)->entry : NULL;
  if (e) cray__store_retain(e);
  pthread_mutex_unlock(&n->mu);
  return e;
}

char *cray__actor_names_copy(cray__sched *s, size_t *count) {
  cray__actor_names *n = &s->names;
  pthread_mutex_lock(&n->mu);
  size_t len = 1;
  for (size_t i = 0; i < n->nbuckets; i++)
    for (name_node *x = n->buckets[i]; x; x = x->next) len += strlen(x->name) + 1;
  char *out = cray__malloc(len), *p = out;
  *count = 0;
  for (size_t i = 0; out && i < n->nbuckets; i++) {
    for (name_node *x = n->buckets[i]; x; x = x->next) {
      size_t k = strlen(x->name) + 1;
      memcpy(p, x->name, k);
      p += k;
      ++*count;
    }
  }
  pthread_mutex_unlock(&n->mu);
  return out;
}

/* The names' references go with the store; only the nodes are freed. */
void cray__actor_names_free(cray__actor_names *n) {
  for (size_t i = 0; i < n->nbuckets; i++) {
    for (name_node *x = n->buckets[i], *next; x; x = next) {
      next = x->next;
      cray__free(x);
    }
  }
  cray__free(n->buckets);
  pthread_mutex_destroy(&n->mu);
}

/* ---- errors and monitors ---- */

void cray__actor_describe(const cray__actor *a, char *buf, size_t n) {
  if (a->name) snprintf(buf, n, "actor '%s' (%s)", a->name, a->class_name);
  else snprintf(buf, n, "actor %s", a->class_name);
}

cray__blob *cray__actor_died_error(cray__actor *a, const char *call) {
  char who[256];
  cray__actor_describe(a, who, sizeof who);
  return cray__error_blob("actor_died", call, a->death, "%s died: %s; call '%s' did not run", who,
                          reason_text[a->reason], call ? call : "?");
}

static void put_cstr(cray__buf *b, const char *s) { cray__mp_str(b, s, strlen(s)); }

/* A monitor's value: {reason, message, restarts (when >= 0), cause (when not NULL)};
 * NULL when memory is short. */
static cray__blob *monitor_value(const char *reason, const char *msg, int restarts,
                                 const cray__blob *cause) {
  cray__buf b;
  cray__buf_init(&b);
  cray__mp_map(&b, 2 + (restarts >= 0) + (cause != NULL));
  put_cstr(&b, "reason");
  put_cstr(&b, reason);
  put_cstr(&b, "message");
  put_cstr(&b, msg);
  if (restarts >= 0) {
    put_cstr(&b, "restarts");
    cray__mp_int(&b, restarts);
  }
  if (cause) {
    put_cstr(&b, "cause");
    cray__mp_reader r = {cause->data, cause->data + cause->len};
    if (cray__mp_skip(&r, 256) == 0) cray__buf_write(&b, cause->data, (size_t)(r.p - cause->data));
    else cray__mp_nil(&b);
  }
  cray__blob *blob = b.failed ? NULL
                              : cray__blob_new(b.data, b.len, 1, cause ? cause->refs : NULL,
                                               cause ? cause->nrefs : 0, CRAY__BLOB_TRUSTED);
  cray__buf_free(&b);
  return blob;
}

/* Resolves monitor m of dead actor a with why it died, and drops the reference. */
static void resolve_monitor(cray__sched *s, cray__actor *a, cray__entry *m) {
  char who[256], msg[512];
  cray__actor_describe(a, who, sizeof who);
  snprintf(msg, sizeof msg, "%s died: %s", who, reason_text[a->reason]);
  cray__blob *v = monitor_value(reason_names[a->reason], msg, -1, a->death);
  if (v && cray__store_resolve(s->store, m, v, 0) != 0) cray__blob_release(s->store, v);
  cray__store_release(s->store, m);
}

cray__entry *cray__actor_monitor(cray__sched *s, cray__actor *a, int restarts) {
  cray__entry *m = cray__store_insert(s->store, cray__id_new(&s->rt->ids), NULL);
  if (!m) return NULL;
  worker *w = lock_home(s, a);
  int dead = a->state == CRAY__ACTOR_DEAD;
  if (!dead) {
    if (a->nmonitors == a->monitors_cap) {
      uint32_t cap = a->monitors_cap ? a->monitors_cap * 2 : 2;
      cray__monitor *v = cray__realloc(a->monitors, cap * sizeof *v);
      if (!v) {
        pthread_mutex_unlock(&w->mu);
        cray__store_release(s->store, m);
        return NULL;
      }
      a->monitors = v;
      a->monitors_cap = cap;
    }
    cray__store_retain(m);
    a->monitors[a->nmonitors++] = (cray__monitor){m, restarts};
  }
  pthread_mutex_unlock(&w->mu);
  if (dead) {
    cray__store_retain(m);
    resolve_monitor(s, a, m);
  }
  return m;
}

/* ---- creating and sending ---- */

static void link_home(worker *w, cray__actor *a) {
  a->prev = NULL;
  a->next = w->actors;
  if (w->actors) w->actors->prev = a;
  w->actors = a;
}

/* Pushes a, made without an init call, on w's `born` stack: no lock, as nothing waits
 * on a until its first call, which lists it under the lock as any send to an idle actor
 * does. Release: whoever takes the stack sees a made. */
static void link_born(worker *w, cray__actor *a) {
  cray__actor *head = atomic_load_explicit(&w->born, memory_order_relaxed);
  do a->next = head;
  while (!atomic_compare_exchange_weak_explicit(&w->born, &head, a, memory_order_release,
                                                memory_order_relaxed));
}

/* Moves the actors born on w to its list of actors. Under w's lock (or once w stopped),
 * before the list is walked or an actor unlinked. */
static void take_born(worker *w) {
  cray__actor *a = atomic_exchange_explicit(&w->born, NULL, memory_order_acquire), *next;
  for (; a; a = next) {
    next = a->next;
    link_home(w, a);
  }
}

static void unlink_home(worker *w, cray__actor *a) {
  take_born(w);
  if (a->prev) a->prev->next = a->next;
  else w->actors = a->next;
  if (a->next) a->next->prev = a->prev;
}

static void actor_free(cray__sched *s, cray__actor *a) {
  if (a->cls) cray__store_release(s->store, a->cls);
  if (a->init_args) cray__blob_release(s->store, a->init_args);
  if (a->death) cray__blob_release(s->store, a->death);
  if (a->raised) cray__blob_release(s->store, a->raised);
  if (a->packed) cray__blob_release(s->store, a->packed);
  for (uint32_t i = 0; i < a->nmonitors; i++) cray__store_release(s->store, a->monitors[i].entry);
  cray__free(a->monitors);
  cray__free(a->resources);
  cray__free(a);
}

/* An actor with its names in the same allocation; its mailbox marked idle when `idle`. */
static cray__actor *actor_new(const char *class_name, const char *name, int idle) {
  size_t nclass = strlen(class_name) + 1, nname = name ? strlen(name) + 1 : 0;
  cray__actor *a = cray__calloc(1, sizeof *a + nclass + nname);
  if (!a) return NULL;
  cray__mailq_init(&a->mail, idle);
  a->class_name = memcpy((char *)(a + 1), class_name, nclass);
  if (name) a->name = memcpy(a->class_name + nclass, name, nname);
  return a;
}

int cray__actor_create(cray__sched *s, const cray__actor_spec *spec, cray__entry *cls,
                       cray__task *init, cray__entry **out) {
  /* Unnamed and without init, nobody else can reach it before it is returned, and it
   * has nothing to list: its mailbox starts idle and it is linked without the lock. */
  int born = !init && !spec->name;
  cray__actor *a = actor_new(spec->class_name ? spec->class_name : "?", spec->name, born);
  cray__entry *e = NULL;
  if (a) {
    a->id = cray__id_new(&s->rt->ids);
    e = cray__store_insert(s->store, a->id, NULL);
  }
  if (!e) {
    cray__free(a);
    if (init) cray__task_release(s->store, init);
    return CRAY_ENOMEM;
  }
  cray__store_set_producer(s->store, e, a);
  e->actor = CRAY__ENTRY_ACTOR;
  a->entry = e;
  a->cls = cls;
  cray__store_retain(cls);
  a->init_args = init ? init->args : NULL;
  if (a->init_args) cray__blob_retain(a->init_args);
  a->max_concurrency = spec->max_concurrency > 0 ? spec->max_concurrency : 1;
  a->max_restarts = spec->max_restarts;
  a->max_task_retries = spec->max_task_retries;
  a->max_pending_calls = spec->max_pending_calls;
  a->restart_on_error = spec->restart_on_error;
  /* A task's or an actor's creations start beside it; a driver's go to the workers in turn. */
  int home = cray__sched_worker_index(s);
  if (home < 0)
    home = (int)(atomic_fetch_add_explicit(&s->actor_rr, 1, memory_order_relaxed) % (unsigned)s->n);
  /* relaxed: nobody else knows the actor yet; the home's lock publishes it, or for one
   * born without it, the release that hands its entry to another thread */
  atomic_store_explicit(&a->home, home, memory_order_relaxed);
  if (spec->name) {
    cray__actor_names *n = &s->names;
    pthread_mutex_lock(&n->mu);
    name_node **p = name_slot(n, spec->name);
    cray__entry *other = p && *p ? (*p)->entry : NULL;
    int rc = other ? 0 : name_add(n, spec->name, e);
    if (other && spec->get_if_exists) cray__store_retain(other);
    pthread_mutex_unlock(&n->mu);
    if (other || rc) {
      /* Never shared: the entry goes with its one reference, and the actor with it. */
      e->actor = 0;
      cray__store_release(s->store, e);
      actor_free(s, a);
      if (init) cray__task_release(s->store, init);
      if (rc) return rc;
      *out = other;
      return spec->get_if_exists ? CRAY__ACTOR_EXISTS : CRAY__ACTOR_NAME_TAKEN;
    }
  }
  atomic_fetch_add_explicit(&s->actors_alive, 1, memory_order_relaxed);
  cray__fstats_actor(s->fstats, CRAY__ACTOR_CREATED);
  if (init) {
    init->actor = a;
    init->is_init = 1;
    init->fn = e;
    cray__store_retain(e);
    cray__sched_count_submit(s, init);
    atomic_store_explicit(&init->state, CRAY__TASK_QUEUED, memory_order_relaxed);
  }
  worker *w = home_of(s, a);
  if (born) {
    link_born(w, a);
    *out = e;
    return CRAY__ACTOR_MADE;
  }
  pthread_mutex_lock(&w->mu);
  link_home(w, a);
  if (init) cray__mailq_push(&a->mail, &init->mail);
  ready_locked(w, a); /* without init: marks it idle, for its first call to list it */
  pthread_mutex_unlock(&w->mu);
  *out = e;
  return CRAY__ACTOR_MADE;
}

void cray__actor_send(cray__sched *s, cray__task *t) {
  cray__actor *a = t->actor;
  t->from = cray__sched_worker_index(s);
  atomic_store_explicit(&t->state, CRAY__TASK_QUEUED, memory_order_relaxed);
  uintptr_t prev = cray__mailq_swap(&a->mail, &t->mail);
  int idle = (int)(prev & CRAY__MAILQ_IDLE);
  /* On a's home's own thread (whose moves of a this thread made, so `home` reads true) an
   * alive a (only this thread makes it dead) is listed at this thread's next look for
   * work, under the lock it takes then: nothing serves, moves or frees a before that. */
  int me = cray__sched_worker_index(s);
  if (idle && me >= 0 && me == home_of(s, a)->index && a->state == CRAY__ACTOR_ALIVE) {
    cray__mailq_link(prev, &t->mail);
    worker *w = home_of(s, a);
    a->lnext = NULL;
    if (w->ltail) w->ltail->lnext = a;
    else w->lhead = a;
    w->ltail = a;
    return;
  }
  /* t keeps a alive until it is linked; after that it may run and go, and this thread
   * still lists a */
  if (idle) cray__store_retain(a->entry);
  cray__mailq_link(prev, &t->mail);
  if (!idle) return; /* listed, served or busy: it is taken from there */
  cray__task *dead = NULL;
  worker *w = lock_home(s, a);
  if (a->state == CRAY__ACTOR_DEAD) dead = take_dead(w, a); /* the mark was a dead actor's */
  else ready_locked(w, a);
  pthread_mutex_unlock(&w->mu);
  fail_all(s, a, dead);
  cray__store_release(s->store, a->entry);
}

void cray__actor_list_local(worker *w) {
  for (cray__actor *a = w->lhead; a; a = a->lnext) ready_locked(w, a);
  w->lhead = w->ltail = NULL;
}

/* ---- control ---- */

int cray__actor_kill(cray__sched *s, cray__actor *a, int restart) {
  worker *w = lock_home(s, a);
  int alive = a->state == CRAY__ACTOR_ALIVE;
  if (alive) {
    add_ctl(a, restart ? CTL_RESTART : CTL_KILL);
    ready_locked(w, a);
  }
  pthread_mutex_unlock(&w->mu);
  return alive ? 0 : CRAY_EINVAL;
}

void cray__actor_gone(void *ctx, void *actor) { set_ctl(ctx, actor, CTL_COLLECT); }

/* Takes a's suspended calls off it: their waits disarmed, their coroutines dropped, each
 * back to not started. Returns them in order; the home's thread, outside its lock. */
static cray__task *abandon_started(cray__sched *s, worker *w, cray__actor *a, int *n) {
  cray__task *head = NULL, **tail = &head;
  *n = 0;
  /* `started` is newest first: reverse it so they go back in the order they started. */
  cray__task *rev = NULL;
  for (cray__task *t = a->started, *next; t; t = next) {
    next = t->sibling;
    t->sibling = rev;
    rev = t;
  }
  a->started = NULL;
  for (cray__task *t = rev, *next; t; t = next) {
    next = t->sibling;
    cray__sched_unpark(s, t); /* an init waiting for resources: `next` is reused below */
    cray__sched_disarm(s, w, t);
    cray__sched_wait_end(s, t);
    s->ex->drop(w->w, t);
    t->exec = NULL;
    t->dispatched = 0;
    if (t->started) cray__sched_count_running(s, t, -1);
    t->home = -1;
    t->sibling = NULL;
    atomic_store_explicit(&t->state, CRAY__TASK_QUEUED, memory_order_release);
    *tail = t;
    tail = &t->next;
    t->next = NULL;
    (*n)++;
  }
  return head;
}

/* Fails t, a call its actor abandoned: with the error it was lost with, if any (its
 * state ran out of memory while it ran), else with `error`. */
static void fail_abandoned(cray__sched *s, cray__task *t, cray__blob *error) {
  if (t->error) {
    if (error) cray__blob_release(s->store, error);
    error = t->error;
    t->error = NULL;
  }
  cray__sched_fail(s, t, error);
}

/* Fails the calls of a dead actor, with no lock held. */
static void fail_all(cray__sched *s, cray__actor *a, cray__task *calls) {
  while (calls) {
    cray__task *next = calls->next;
    fail_abandoned(s, calls, cray__actor_died_error(a, calls->name));
    calls = next;
  }
}

/* Drops a's instance, made here or packed on its way here. */
static void drop_instance(cray__sched *s, worker *w, cray__actor *a) {
  if (w->w) s->ex->actor_drop(w->w, a); /* a worker without a state has no instances */
  if (a->packed) cray__blob_release(s->store, a->packed);
  a->packed = NULL;
}

static void die(cray__sched *s, worker *w, cray__actor *a, int reason) {
  int n;
  cray__task *started = abandon_started(s, w, a, &n);
  drop_instance(s, w, a);
  pthread_mutex_lock(&w->mu);
  a->state = CRAY__ACTOR_DEAD;
  a->reason = reason;
  a->running -= n;
  a->initializing = 0;
  cray__task *mail = take_dead(w, a); /* from now on every send finds the mark and fails */
  cray__monitor *monitors = a->monitors;
  uint32_t nmonitors = a->nmonitors;
  a->monitors = NULL;
  a->nmonitors = a->monitors_cap = 0;
  pthread_mutex_unlock(&w->mu);
  /* The name goes before anyone learns of the death: whoever a monitor or a failed call
   * wakes may register an actor under it again at once (a supervisor restarting it). */
  cray__entry *named = name_remove(s, a);
  if (named) cray__store_release(s->store, named);
  if (a->name && s->rt->cluster) cray__cluster_name_gone(s->rt->cluster, a->name, &a->id);
  atomic_fetch_sub_explicit(&s->actors_alive, 1, memory_order_relaxed);
  cray__fstats_actor(s->fstats, CRAY__ACTOR_DIED);
  if (a->nresources) cray__sched_release_resources(s, a->resources, a->nresources);
  a->nresources = 0;
  fail_all(s, a, started);
  fail_all(s, a, mail);
  for (uint32_t i = 0; i < nmonitors; i++) resolve_monitor(s, a, monitors[i].entry);
  cray__free(monitors);
}

/* Resolves a's monitors that asked for restarts: a restarts now, for `why`. They are taken
 * off under the lock and resolved without it; when memory for that is short they stay, to
 * be resolved when a dies. */
static void tell_restart(cray__sched *s, worker *w, cray__actor *a, const char *why) {
  uint32_t n = 0, kept = 0;
  pthread_mutex_lock(&w->mu);
  cray__entry **told = a->nmonitors ? cray__malloc(a->nmonitors * sizeof *told) : NULL;
  for (uint32_t i = 0; told && i < a->nmonitors; i++) {
    if (a->monitors[i].restarts) told[n++] = a->monitors[i].entry;
    else a->monitors[kept++] = a->monitors[i];
  }
  if (told) a->nmonitors = kept;
  pthread_mutex_unlock(&w->mu);
  char who[256], msg[512];
  cray__actor_describe(a, who, sizeof who);
  snprintf(msg, sizeof msg, "%s restarted (%d so far): %s", who, a->restarts, why);
  for (uint32_t i = 0; i < n; i++) {
    cray__blob *v = monitor_value("restarted", msg, a->restarts, a->raised);
    if (v && cray__store_resolve(s->store, told[i], v, 0) != 0) cray__blob_release(s->store, v);
    cray__store_release(s->store, told[i]);
  }
  cray__free(told);
}

/* Runs init again before anything queued; interrupted calls go back first, while they
 * have retries left. `why` is for the monitors told of restarts. */
static void restart(cray__sched *s, worker *w, cray__actor *a, const char *why) {
  a->restarts++;
  cray__fstats_actor(s->fstats, CRAY__ACTOR_RESTARTED);
  tell_restart(s, w, a, why);
  if (a->raised) cray__blob_release(s->store, a->raised);
  a->raised = NULL;
  int n;
  cray__task *started = abandon_started(s, w, a, &n), *again = NULL, **tail = &again, *fail = NULL;
  cray__task *old_init = NULL; /* an init the restart interrupted */
  drop_instance(s, w, a);
  for (cray__task *t = started, *next; t; t = next) {
    next = t->next;
    t->next = NULL;
    if (t->is_init) {
      old_init = t;
      t->next = fail;
      fail = t;
    } else if (t->retries < a->max_task_retries) {
      t->retries++;
      if (t->error) cray__blob_release(s->store, t->error);
      t->error = NULL;
      *tail = t;
      tail = &t->next;
    } else {
      t->next = fail;
      fail = t;
    }
  }
  char name[256];
  snprintf(name, sizeof name, "%s.init", a->class_name);
  /* An actor keeps the resources its first init took across restarts; an init that had
   * not finished gives back what it held when it fails below, and the new one asks again. */
  int nres = old_init && !a->nresources ? old_init->nresources : 0;
  cray__task *init = cray__task_new(0, 0, nres, name);
  if (init) {
    if (nres) memcpy(init->resources, old_init->resources, (size_t)nres * sizeof *init->resources);
    init->method = init->name + strlen(init->name) - 4;
    init->actor = a;
    init->is_init = 1;
    init->id = cray__id_new(&s->rt->ids);
    init->args = a->init_args;
    if (init->args) {
      cray__blob_retain(init->args);
      cray__store_count_bytes(s->store, (int64_t)init->args->len);
    }
    init->fn = a->entry;
    cray__store_retain(a->entry);
    cray__sched_count_submit(s, init);
    atomic_store_explicit(&init->state, CRAY__TASK_QUEUED, memory_order_relaxed);
    init->next = again;
    again = init;
  }
  pthread_mutex_lock(&w->mu);
  a->running -= n;
  a->initializing = 0;
  if (again) {
    cray__task *last = again;
    while (last->next) last = last->next;
    last->next = a->mhead;
    if (!a->mhead) a->mtail = last;
    a->mhead = again;
  }
  ready_locked(w, a);
  pthread_mutex_unlock(&w->mu);
  char who[256];
  cray__actor_describe(a, who, sizeof who);
  while (fail) {
    cray__task *next = fail->next;
    fail_abandoned(
        s, fail,
        cray__error_blob("actor_died", fail->name, NULL,
                         "%s restarted while call '%s' ran, and the call has no retries left "
                         "(max_task_retries = %d)",
                         who, fail->name ? fail->name : "?", a->max_task_retries));
    fail = next;
  }
  if (!init) die(s, w, a, CRAY__DIED_OUT_OF_MEMORY);
}

/* Applies ctl; returns 1 when a is gone. */
static int apply(cray__sched *s, worker *w, cray__actor *a, int ctl) {
  if (ctl & CTL_COLLECT) {
    if (a->state == CRAY__ACTOR_ALIVE) die(s, w, a, CRAY__DIED_COLLECTED);
    pthread_mutex_lock(&w->mu);
    unlink_home(w, a);
    pthread_mutex_unlock(&w->mu);
    actor_free(s, a);
    return 1;
  }
  if (a->state == CRAY__ACTOR_DEAD) return 0;
  if (ctl & CTL_INIT_FAILED) die(s, w, a, CRAY__DIED_INIT_ERROR);
  else if (ctl & CTL_SHUTDOWN) die(s, w, a, CRAY__DIED_SHUTDOWN);
  else if (ctl & CTL_KILL) die(s, w, a, CRAY__DIED_KILLED);
  else if (ctl & (CTL_RESTART | CTL_LOST | CTL_ERROR) && a->restarts < a->max_restarts)
    restart(s, w, a, ctl & CTL_LOST    ? "its worker's Lua state ran out of memory"
                     : ctl & CTL_ERROR ? "a method raised an error (the cause)"
                                       : "it was killed with cray.kill");
  else if (ctl & CTL_LOST) die(s, w, a, CRAY__DIED_OUT_OF_MEMORY);
  else if (ctl & CTL_ERROR) {
    if (!a->death) a->death = a->raised, a->raised = NULL;
    die(s, w, a, CRAY__DIED_ERROR);
  }
  else if (ctl & CTL_RESTART) die(s, w, a, CRAY__DIED_KILLED);
  else if (ctl & CTL_EXIT) die(s, w, a, CRAY__DIED_EXITED);
  return 0;
}

/* ---- moving ----
 *
 * An instance lives in its home's executor state, which only the home's thread touches,
 * so an actor moves by its home giving it away (cray__actor_move, called by the
 * scheduler when its ready list holds more and another worker sleeps), not by a thief
 * taking it. The home pops it as to serve it: `ready` stays set, so nobody lists it or
 * starts its calls meanwhile, and it has none started, so no call ends or wakes on the
 * old home. Without the lock the home packs the instance; then, under both homes' locks
 * taken in index order, `home` changes, the actor changes lists and is listed on its new
 * home, which unpacks the instance at its next call. Control set meanwhile (kill,
 * collection) moves with it and is applied there. Senders that push without a lock do
 * not care where the actor is; the others lock its home with lock_home.
 *
 * Two reasons move an actor. Balance: the scheduler's, above. Compaction, toward its
 * caller: a pair or a ring made by the driver starts spread over the workers, each hop a
 * hand-off to the other thread, and balance never gathers it (one message in flight
 * never lists two actors on a worker). So the home notes the worker each call came from
 * (cray__actor_send stamps it; the driver and other threads are none), and at the end of
 * serving an actor whose last COMPACT_AFTER calls all came from one lower-numbered
 * worker, with nothing else to run here and at most one actor listed there, gives it to
 * that worker (toward_caller): both idle but for the message in flight. Toward
 * the lower one only, as Erlang compacts its schedulers: a ring's neighbours, each
 * called from the other worker, would otherwise swap homes at every lap rather than
 * gather. A move starts the count again, so an actor balance gave away comes back only
 * after that many calls, all from the one worker, found this worker with nothing else to
 * do. */

/* Calls in a row from one other worker before the actor moves to it. */
#define COMPACT_AFTER 16

int cray__actor_move(cray__sched *s, worker *w, cray__actor *a, worker *to) {
  /* An actor whose init has not run (no instance yet) stays: actors made together start
   * together, and a burst of inits is not work for two. */
  if (a->state != CRAY__ACTOR_ALIVE || ctl_of(a) || a->running || a->started || a->pinned ||
      !a->exec || !s->ex->actor_pack)
    return 0;
  pthread_mutex_unlock(&w->mu);
  if (!(a->packed = s->ex->actor_pack(w->w, a))) {
    a->pinned = 1;
    pthread_mutex_lock(&w->mu);
    return 0;
  }
  worker *first = w->index < to->index ? w : to, *second = first == w ? to : w;
  pthread_mutex_lock(&first->mu);
  pthread_mutex_lock(&second->mu);
  /* relaxed: both locks order it for lock_home */
  atomic_store_explicit(&a->home, to->index, memory_order_relaxed);
  unlink_home(w, a);
  link_home(to, a);
  a->from_caller = 0;
  a->ready = 0;
  ready_locked(to, a); /* listed there when it has calls or control; else idle */
  pthread_mutex_unlock(&second->mu);
  pthread_mutex_unlock(&first->mu);
  cray__fstats_actor(s->fstats, CRAY__ACTOR_MOVED);
  return 1;
}

/* Notes that a's call from worker `from` (-1: none) starts on w, its home. */
static void note_caller(cray__actor *a, const worker *w, int from) {
  if (from < 0 || from == w->index) a->from_caller = 0;
  else if (from == a->caller) a->from_caller++;
  else a->from_caller = 1;
  a->caller = from;
}

/* The worker a, just served by its home w, should move to as its calls come from there,
 * w has nothing else to run and that worker at most one actor listed, the one a called
 * last perhaps (see "moving"), or NULL. Under w->mu: the other lock is only tried. */
static worker *toward_caller(cray__sched *s, const worker *w, const cray__actor *a) {
  if (a->from_caller < COMPACT_AFTER || a->caller >= w->index || w->depth || w->rhead ||
      w->qhead || w->ihead)
    return NULL;
  worker *to = &s->workers[a->caller];
  if (pthread_mutex_trylock(&to->mu) != 0) return NULL;
  int quiet = !to->qhead && (!to->rhead || !to->rhead->rnext);
  pthread_mutex_unlock(&to->mu);
  return quiet ? to : NULL;
}

/* ---- serving ---- */

/* Calls started in a row before the actor goes to the back of the ready list. */
#define SERVE_BATCH 64

/* Folds what call_end counted while the actor was served. */
static int fold(cray__actor *a) {
  a->running -= a->ended;
  a->ended = 0;
  if (a->ended_init) a->initializing = 0, a->ended_init = 0;
  int ctl = a->ctl_local;
  a->ctl_local = 0;
  return ctl;
}

/* Drops the references to a's entry that the calls ended while serving left to it: one
 * atomic operation on the entry's count for the batch, where each call's would have taken
 * its line from the caller that had just taken a reference to send. Without w->mu: the
 * last one makes the actor collected (cray__actor_gone), which takes it. */
static void drop_ended(cray__sched *s, cray__actor *a) {
  uint32_t n = a->ended_refs;
  a->ended_refs = 0;
  if (n) cray__store_release_n(s->store, a->entry, n);
}

static int can_start(const cray__actor *a) {
  return a->state == CRAY__ACTOR_ALIVE && !a->initializing && a->running < a->max_concurrency;
}

void cray__actor_serve(cray__sched *s, worker *w, cray__actor *a) {
  /* `ready` stays set while serving, so nobody else lists the actor, reads its slots or
   * takes its calls: `running`, `initializing` and the mailbox's consumer side are this
   * thread's until it is cleared. Calls are taken and started without the lock; calls that
   * end meanwhile are counted by call_end in `ended` and folded in here. */
  a->serving = 1;
  int n = 0;
  for (;;) {
    uint64_t at = 0; /* the stamp the call before ended on, for the next to start on */
    /* relaxed: as ctl_of */
    int ctl = atomic_exchange_explicit(&a->ctl, 0, memory_order_relaxed);
    pthread_mutex_unlock(&w->mu);
    ctl |= fold(a);
    cray__task *t;
    while (!ctl && n < SERVE_BATCH && can_start(a) && (t = take_call(a))) {
      if (ctl_of(a)) {
        /* Control came (a kill, say) and is applied first; a call its sender sent after
         * it is certain to see it here: the pop acquired the push that followed it. */
        put_back(a, t);
        break;
      }
      a->running++;
      a->initializing = t->is_init;
      t->dispatched = 1;
      t->sibling = a->started;
      a->started = t;
      n++;
      note_caller(a, w, t->is_init ? -1 : t->from);
      at = cray__sched_start_call(s, w, t, at);
      ctl |= fold(a);
    }
    drop_ended(s, a);
    pthread_mutex_lock(&w->mu);
    if (ctl) {
      pthread_mutex_unlock(&w->mu);
      a->serving = 0;
      if (apply(s, w, a, ctl)) return;
      a->serving = 1;
      pthread_mutex_lock(&w->mu);
      continue;
    }
    if (!ctl_of(a)) break;
  }
  a->serving = 0;
  worker *to = toward_caller(s, w, a);
  if (to && cray__actor_move(s, w, a, to)) return;
  a->ready = 0;
  ready_locked(w, a);
  pthread_mutex_unlock(&w->mu);
}

static void unlink_started(cray__actor *a, cray__task *t) {
  for (cray__task **p = &a->started; *p; p = &(*p)->sibling) {
    if (*p == t) {
      *p = t->sibling;
      break;
    }
  }
  t->sibling = NULL;
}

void cray__actor_call_end(cray__sched *s, cray__task *t, const cray__blob *error) {
  cray__actor *a = t->actor;
  worker *w = home_of(s, a);
  unlink_started(a, t);
  t->dispatched = 0;
  int ctl = 0;
  if (t->exit_after) ctl |= CTL_EXIT;
  if (t->is_init && error) {
    ctl |= CTL_INIT_FAILED;
    if (!a->death) {
      cray__blob_retain((cray__blob *)error);
      a->death = (cray__blob *)error;
    }
  }
  if (!t->is_init && error && t->raised && a->restart_on_error) {
    ctl |= CTL_ERROR;
    if (!a->raised) {
      cray__blob_retain((cray__blob *)error);
      a->raised = (cray__blob *)error;
    }
  }
  if (a->serving) {
    a->ended++;
    a->ended_init |= t->is_init;
    a->ctl_local |= ctl;
    if (t->fn == a->entry) { /* nothing reads t->fn once it has ended */
      t->fn = NULL;
      a->ended_refs++;
    }
    return;
  }
  pthread_mutex_lock(&w->mu);
  a->running--;
  if (t->is_init) a->initializing = 0;
  add_ctl(a, ctl);
  ready_locked(w, a);
  pthread_mutex_unlock(&w->mu);
}

void cray__actor_keep_resources(cray__task *t) {
  cray__actor *a = t->actor;
  if (!t->holds_resources || a->nresources) return;
  size_t size = (size_t)t->nresources * sizeof *t->resources;
  if (!(a->resources = cray__malloc(size))) return; /* then they go back with the call */
  memcpy(a->resources, t->resources, size);
  a->nresources = t->nresources;
  t->holds_resources = 0;
}

void cray__actor_call_suspended(cray__sched *s, cray__task *t) {
  cray__actor *a = t->actor;
  if (a->max_concurrency == 1 || t->is_init || a->serving) return;
  worker *w = home_of(s, a);
  pthread_mutex_lock(&w->mu);
  ready_locked(w, a);
  pthread_mutex_unlock(&w->mu);
}

/* Sets ctl on each living actor homed on w for which `which` says so. */
static void tell_all(worker *w, int ctl, int (*which)(void *w, cray__actor *a)) {
  pthread_mutex_lock(&w->mu);
  take_born(w);
  for (cray__actor *a = w->actors; a; a = a->next) {
    if (a->state != CRAY__ACTOR_ALIVE || (which && !which(w->w, a))) continue;
    add_ctl(a, ctl);
    ready_locked(w, a);
  }
  pthread_mutex_unlock(&w->mu);
}

void cray__actor_lost(cray__sched *s, worker *w) { tell_all(w, CTL_LOST, s->ex->actor_lost); }

void cray__actor_shutdown(worker *w) { tell_all(w, CTL_SHUTDOWN, NULL); }

void cray__actor_free_all(cray__sched *s) {
  for (int i = 0; i < s->n; i++) {
    worker *w = &s->workers[i];
    take_born(w);
    while (w->actors) {
      cray__actor *a = w->actors;
      w->actors = a->next;
      actor_free(s, a);
    }
  }
  cray__actor_names_free(&s->names);
}
