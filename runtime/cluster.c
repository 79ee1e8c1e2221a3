/*
 * cluster.c: the communication thread, its queue, and the messages between ranks (see
 * cluster.h for the model).
 *
 * The queue. Any thread hands the communication thread an `intent` (ship this task, send
 * this entry's value, end the job) by pushing it on an intrusive multi-producer,
 * single-consumer queue (Vyukov's): a push swaps the new node into `head` and then links
 * the node that was there to it; only the communication thread pops, from `tail`. A pop
 * that meets a push halfway (head moved, link not written yet) reports the queue empty
 * and the communication thread looks again on its next round. A push never blocks and
 * takes no lock, so store wake-ups, which run under shard locks, may push.
 *
 * The wake-up. The communication thread polls the transport, so it cannot sleep on the
 * queue alone, and a message from another rank wakes nothing: it is found when the thread
 * next looks. So for IDLE_SPIN seconds after the last round that did something it yields
 * instead of sleeping (a call's reply, or the next call of a caller on another rank, comes
 * within that); then it sleeps on a semaphore for a quarter of the time it has been idle,
 * at most IDLE_MAX, so a message after a quiet spell waits at most a quarter of that
 * spell longer. (Counting rounds instead let two ranks calling each other settle into
 * each finding the other's message only after a long sleep.) It sets `sleeping` before
 * its last look at the queue, and a pusher posts the semaphore when it reads `sleeping`
 * set after its push (both sequentially consistent, so one of the two sees the other).
 *
 * Messages. Control messages (tag TAG_CTRL) are small and self-contained. A value longer
 * than INLINE_MAX travels after its control message as chunks of at most CHUNK bytes
 * (TAG_DATA), at most CHUNKS_IN_FLIGHT per destination, received straight into the blob
 * that will hold it; control messages are never queued behind them. Messages from one
 * rank arrive in the order it sent them, so the chunks a rank receives from a source
 * belong to the oldest incomplete value announced by that source.
 *
 * Ownership of what crosses. A task sent to another rank (a shadow) keeps its
 * arguments, function and returns here until every return's value came back, so the ids
 * of a task message need no counting. A ref nested in a sent value carries a weight
 * (DESIGN.md §9): the owner lends GRANT more each time one of its objects leaves and
 * holds the object while any weight is out; a rank that forwards another's ref gives half
 * of the weight it holds; a rank whose last entry for another's object is freed (the
 * store's remote_gone) returns all it holds to the owner, in one M_RETURN per owner and
 * round. Weight that cannot be halved any more is never returned (`stuck`): the object
 * then lives until the job ends, never too short. Everything below `communication thread
 * only` is touched by that thread alone; `mu` guards the few fields other threads wait on.
 *
 * Pulls. A proxy is made `unpulled`; the store calls remote_wanted on the first subscribe
 * to it (or a wait of no time), which counts it in flight and pushes I_PULL, and only then
 * does M_FETCH go to the owner.
 *
 * A rank that died. Every PEER_CHECK, and when the process is told to stop, the
 * communication thread looks for the processes of the ranks on its host; one that is gone
 * is named with what was in flight with it, and the job ends.
 *
 * Nodes and reports. At cray__cluster_ready every rank broadcasts its workers, host name
 * and resources (`nodes`, fixed afterwards: other threads read it without a lock, after
 * ready). cray__cluster_reports asks every rank for its counts now (M_QUERY, answered by
 * M_REPORT) and sleeps on `mu` until the last answer. A task's resources cross ranks by
 * name: its resource indices are into the table of the rank named by its ship intent.
 */
#include "cluster.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "actor.h"
#include "alloc.h"
#include "id.h"
#include "runtime.h"
#include "sched.h"
#include "store.h"
#include "stream.h"
#include "trace.h"
#include "wait.h"
#include "wire.h"

#define container_of(p, type, field) ((type *)((char *)(p) - offsetof(type, field)))

#define TAG_CTRL 1
#define TAG_DATA 2
#define INLINE_MAX ((size_t)64 << 10)
#define CHUNK ((size_t)4 << 20)
#define CHUNKS_IN_FLIGHT 2
#define IDLE_SPIN 1e-3
#define IDLE_SHARE 0.25
#define IDLE_MAX 1e-3
#define SHADOW_BUCKETS 1024
#define WEIGHT_BUCKETS 4096
#define FN_CACHE 64
#define NAME_BUCKETS 256
#define GRANT ((uint64_t)1 << 40)
#define STEAL_BATCH 8
#define STEAL_WAIT_MIN 1e-3
#define STEAL_WAIT_MAX 20e-3
#define ACTOR_REF ((uint64_t)1 << 63) /* in a nested ref's weight: the ref is an actor's */
#define NOT_A_CALL UINT32_MAX         /* in M_TASK: a task, not an actor call */
#define PEER_CHECK 20e-3
#define DYING_GRACE 0.5

enum {
  M_TASK = 1, M_RESULT, M_FETCH, M_OBJECT, M_EXIT, M_ACK, M_STEAL, M_STOLEN, M_RETURN, M_CANCEL,
  M_CREATE, M_CREATED, M_KILL, M_MONITOR, M_TAKEN, M_QUERY, M_REPORT, M_NAME, M_NAMED,
  M_ITEM, M_TOOK, M_KILLED, M_MONITORED,
};
enum { OBJ_READY = 0, OBJ_FAILED = 1, OBJ_LOST = 2 };
enum {
  I_SUBMIT, I_SHIP, I_SEND, I_ATTACH, I_READY, I_DETACH, I_EXIT, I_ACK, I_STOP, I_GONE, I_CANCEL,
  I_CREATE, I_KILL, I_MONITOR, I_QUERY, I_CHECK, I_PULL, I_NAME, I_ITEM, I_TOOK,
};

typedef struct intent intent;
struct intent {
  _Atomic(intent *) next;
  int kind;
  int rank;          /* where the message goes */
  int msg;           /* I_SEND: M_RESULT, M_OBJECT or M_MONITORED */
  int status;        /* I_EXIT; I_KILL: restart; I_MONITOR: at restarts too */
  int table;         /* I_SHIP: the rank whose resources task->resources index */
  void *ptr;         /* I_ATTACH: the runtime; I_READY: the scheduler; I_CREATE: the request;
                        I_QUERY: the query */
  cray__task *task;  /* I_SHIP */
  cray_id id;        /* I_GONE: the object whose last entry here was freed; I_CANCEL: a
                        return of the task to cancel; I_SEND: the id the value goes under;
                        I_KILL, I_MONITOR: the actor; I_PULL: the proxy to fill; I_ITEM:
                        the item; I_TOOK: the streaming task */
  uint64_t count;    /* I_TOOK: the items its consumer took, or UINT64_MAX: it is gone */
  cray__entry *entry; /* I_SEND, I_ITEM, held; I_MONITOR: the monitor, held */
  cray__cluster *c;
  cray__waiter waiter;
  cray__waitnode node;
  intent *wprev, *wnext; /* the watch list, while subscribed */
};

typedef struct sendreq {
  void *req;
  uint8_t *buf;     /* freed when done */
  cray__blob *blob; /* released when done */
  int chunk_dest;   /* a chunk's destination, or -1 */
} sendreq;

typedef struct bulk {
  struct bulk *next;
  cray__blob *blob; /* held */
  size_t off;
} bulk;

/* A received message whose value is still arriving, or a complete one behind it (messages
 * from one rank are delivered in the order they came, so actor calls keep their order). */
typedef struct pmsg {
  struct pmsg *next;
  int kind, state;
  cray_id id;
  cray__task *task; /* M_TASK, M_CREATE: built, its args blob filling */
  cray__blob *blob; /* being filled */
  size_t off;
  int waiting;      /* bytes are still to come */
  int source;
  uint64_t token;   /* M_CREATE: the creator's request */
  cray__actor_spec spec; /* M_CREATE; its class name is owned */
  cray__entry *cls;      /* M_CREATE: the class, held */
} pmsg;

/* An actor being made on another rank (cray__cluster_actor_create): the creating thread
 * waits on the cluster's cv until `done`. */
typedef struct areq {
  struct areq *next; /* the requests in flight: communication thread only */
  uint64_t token;
  int node;
  const cray__actor_spec *spec;
  cray__entry *cls;
  cray__task *init;
  cray__entry *out; /* the actor's entry here, or NULL when it could not be made */
  int done;         /* under mu */
} areq;

/* A request to the directory of actor names (cray__cluster_name), which rank 0 keeps, or
 * a kill of an actor on another rank (cray__cluster_actor_kill: `op` is whether it
 * restarts, `status` the answer, 1 when it was alive): the asking thread waits on the
 * cluster's cv until `done`, unless it is `async` (then the communication thread frees
 * it). */
typedef struct nreq {
  struct nreq *next; /* the requests in flight: communication thread only */
  uint64_t token;
  int op, status, done, async;
  cray_id actor;
  cray__entry *ref; /* CRAY__NAME_SET: the ref whose value is the actor's handle, held */
  cray__entry *out; /* the ref found, with one reference, or NULL */
  cray__buf *list;  /* CRAY__NAME_LIST: the names, as directory_list writes them */
  char name[];
} nreq;

/* A name in rank 0's directory: the ref of its actor's handle (NULL while it is being
 * made, or after its actor died first: `dead`). */
typedef struct dname {
  struct dname *next;
  cray__entry *ref;
  cray_id actor;
  int dead;
  char name[];
} dname;

/* The weight of refs to one object (see the top of the file). */
typedef struct weight {
  struct weight *next;
  cray_id id;
  uint64_t w;          /* the owner: weight lent out; another rank: weight held here */
  uint32_t live;       /* another rank: its entries here for the object (0 or 1, or 2
                          while a freed one's I_GONE is on its way) */
  int stuck;           /* another rank: gave weight it could not halve */
  cray__entry *held;   /* the owner: the object, held while weight is out */
} weight;

/* A task sent elsewhere (or waiting for its arguments to be), t->exec its ship intent
 * until it is sent. */
typedef struct shadow {
  struct shadow *next;
  cray__task *task;
  uint32_t left; /* returns whose value has not come */
  int dest;      /* the rank that runs it */
  int shipped;   /* sent there */
} shadow;

/* A streaming task served here: the producer's side of its stream (stream.h), whose
 * consumer is on the task's owner. */
typedef struct served {
  struct served *next;
  cray__stream *st; /* the consumer's reference */
} served;

/* A cray__cluster_reports or cray__cluster_trace call waiting for every rank's answer. */
typedef struct query {
  struct query *next;
  uint32_t seq;
  int op;                     /* CRAY__QUERY_* */
  int left;                   /* ranks yet to answer */
  int done, failed;           /* done under mu; failed set before it */
  cray__cluster_report *out;  /* CRAY__QUERY_REPORT: each rank's */
  cray__trace_rank *ranks;    /* CRAY__QUERY_TRACE_READ: each rank's events */
} query;

struct cray__cluster {
  const cray_transport *tp;
  int rank, size;
  uint64_t nonce;
  pthread_t thread;

  _Atomic(intent *) head; /* the queue: pushers swap here */
  intent *tail;           /* the communication thread pops here */
  intent stub;
  sem_t sem;
  _Atomic int sleeping;
  _Atomic uint64_t inflight;

  pthread_mutex_t mu;
  pthread_cond_t cv;
  int started, start_rc;
  char err[256];
  int attached;    /* between attach and detach: submits are taken */
  int ready_done, detach_done, exit_seen, exit_status, acks;
  cray__cluster_node *nodes; /* size entries, written before ready_done and fixed after */

  /* communication thread only */
  int stop;
  cray_runtime *rt;
  cray__store *store;
  cray__sched *sched;
  sendreq *sends;
  size_t nsends, sends_cap;
  bulk **out_head, **out_tail;
  int *chunks_out;
  pmsg **in_head, **in_tail;
  shadow *shadows[SHADOW_BUCKETS];
  served *streams;         /* streaming tasks served here, until their end is sent */
  weight *weights[WEIGHT_BUCKETS];
  cray__entry *fns[FN_CACHE]; /* other ranks' functions of tasks run here lately, held */
  unsigned fn_next;
  cray__buf *returns;      /* per owner: (id, weight) pairs to send back this round */
  uint32_t *nreturns;
  intent *watches;
  areq *creates;           /* actors being made on other ranks */
  nreq *names;             /* directory requests sent to rank 0 */
  dname *directory[NAME_BUCKETS]; /* rank 0: the job's actor names */
  uint64_t next_token;
  int stealing;            /* a steal request is out */
  int victim;              /* the rank asked last */
  double steal_wait;       /* after a request that brought nothing, wait this long */
  double next_steal;       /* ask again no sooner than this (cray__now) */
  uint32_t *asked;         /* per rank: values asked of it that have not come */
  double next_check;       /* look for ranks gone from this host no sooner than this */
  double dying;            /* a rank died: end the job at this time (cray__now), 0 before */
  query *queries;          /* waiting for reports */
  uint32_t query_seq;
  cray__buf scratch; /* the message being built */
  cray__buf recvbuf; /* the control message being read */
};

static cray__cluster *process_cluster;

cray__cluster *cray__cluster_process(void) { return process_cluster; }
int cray__cluster_rank(const cray__cluster *c) { return c->rank; }
int cray__cluster_size(const cray__cluster *c) { return c->size; }
uint64_t cray__cluster_id_hi(const cray__cluster *c) {
  return c->nonce << CRAY__ID_RANK_BITS | (uint64_t)c->rank;
}
uint64_t cray__cluster_inflight(const cray__cluster *c) {
  /* relaxed: a hint for the deadlock check, which looks again before it reports */
  return atomic_load_explicit(&c->inflight, memory_order_relaxed);
}

/* ---- the queue ---- */

static void push(cray__cluster *c, intent *in) {
  atomic_store_explicit(&in->next, NULL, memory_order_relaxed);
  /* acq_rel: takes the previous head's publication, publishes this node's fields */
  intent *prev = atomic_exchange_explicit(&c->head, in, memory_order_acq_rel);
  /* release: the consumer that follows this link sees the node's fields */
  atomic_store_explicit(&prev->next, in, memory_order_release);
  /* seq_cst: pairs with the sleeper's store of `sleeping` before its last look */
  if (atomic_load_explicit(&c->sleeping, memory_order_seq_cst)) sem_post(&c->sem);
}

static intent *pop(cray__cluster *c) {
  intent *tail = c->tail;
  /* acquire: the node a link points to was published by its pusher */
  intent *next = atomic_load_explicit(&tail->next, memory_order_acquire);
  if (tail == &c->stub) {
    if (!next) return NULL;
    c->tail = tail = next;
    next = atomic_load_explicit(&next->next, memory_order_acquire);
  }
  if (next) {
    c->tail = next;
    return tail;
  }
  /* acquire: as above, for the head a pusher swapped in */
  if (tail != atomic_load_explicit(&c->head, memory_order_acquire)) return NULL; /* halfway */
  push(c, &c->stub);
  next = atomic_load_explicit(&tail->next, memory_order_acquire);
  if (!next) return NULL;
  c->tail = next;
  return tail;
}

static int queue_empty(cray__cluster *c) {
  /* acquire: as in pop */
  return c->tail == &c->stub && !atomic_load_explicit(&c->stub.next, memory_order_acquire) &&
         atomic_load_explicit(&c->head, memory_order_acquire) == &c->stub;
}

static intent *intent_new(cray__cluster *c, int kind) {
  intent *in = cray__calloc(1, sizeof *in);
  if (!in) {
    fprintf(stderr, "crayrun: rank %d: out of memory for a message; ending the job\n", c->rank);
    c->tp->abort(1);
  }
  in->kind = kind;
  in->c = c;
  return in;
}

/* Sets *flag under mu and wakes the threads that wait on the cluster's cv; what the
 * caller wrote before is seen by a waiter that sees the flag. */
static void signal_done(cray__cluster *c, int *flag) {
  pthread_mutex_lock(&c->mu);
  *flag = 1;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

/* ---- failing the whole job ---- */

static void fatal(cray__cluster *c, const char *what) {
  fprintf(stderr, "crayrun: rank %d of %d: %s: %s; ending the job\n", c->rank, c->size, what,
          c->tp->error());
  c->tp->abort(1);
}

static void protocol_error(cray__cluster *c, int source, const char *what) {
  fprintf(stderr, "crayrun: rank %d: a malformed message from rank %d (%s); ending the job\n",
          c->rank, source, what);
  c->tp->abort(1);
}

/* ---- sending ---- */

static void add_send(cray__cluster *c, sendreq r) {
  if (c->nsends == c->sends_cap) {
    size_t cap = c->sends_cap ? c->sends_cap * 2 : 64;
    sendreq *v = cray__realloc(c->sends, cap * sizeof *v);
    if (!v) fatal(c, "out of memory for sends");
    c->sends = v;
    c->sends_cap = cap;
  }
  c->sends[c->nsends++] = r;
}

/* Sends the scratch buffer's message to dest (a copy goes out; scratch is reset). */
static void send_ctrl(cray__cluster *c, int dest) {
  if (c->scratch.failed) fatal(c, "out of memory for a message");
  uint8_t *buf = cray__malloc(c->scratch.len);
  if (!buf) fatal(c, "out of memory for a message");
  memcpy(buf, c->scratch.data, c->scratch.len);
  void *req;
  if (c->tp->isend(dest, TAG_CTRL, buf, c->scratch.len, &req) != 0) fatal(c, "send");
  add_send(c, (sendreq){req, buf, NULL, -1});
  c->scratch.len = 0;
}

static void put_u8(cray__buf *b, unsigned v) {
  uint8_t x = (uint8_t)v;
  cray__buf_write(b, &x, 1);
}
static void put_u32(cray__buf *b, uint32_t v) {
  uint8_t *p = cray__buf_reserve(b, 4);
  if (p) cray__be32(p, v);
}
static void put_u64(cray__buf *b, uint64_t v) {
  uint8_t *p = cray__buf_reserve(b, 8);
  if (p) cray__be64(p, v);
}
static void put_id(cray__buf *b, const cray_id *id) {
  uint8_t *p = cray__buf_reserve(b, 16);
  if (p) cray__id_store(id, p);
}
static void put_f64(cray__buf *b, double v) {
  uint64_t u;
  memcpy(&u, &v, sizeof u);
  put_u64(b, u);
}
static void put_str(cray__buf *b, const char *s) {
  size_t n = strlen(s);
  put_u32(b, (uint32_t)n);
  cray__buf_write(b, s, n);
}

/* ---- weights ---- */

static weight **weight_slot(cray__cluster *c, const cray_id *id) {
  weight **p = &c->weights[cray__id_hash(id) % WEIGHT_BUCKETS];
  while (*p && !cray__id_eq(&(*p)->id, id)) p = &(*p)->next;
  return p;
}

static weight *weight_of(cray__cluster *c, const cray_id *id) {
  weight **slot = weight_slot(c, id);
  if (*slot) return *slot;
  weight *w = cray__calloc(1, sizeof *w);
  if (!w) fatal(c, "out of memory for a reference count");
  w->id = *id;
  return *slot = w;
}

static void weight_drop(cray__cluster *c, weight **slot) {
  weight *w = *slot;
  *slot = w->next;
  if (w->held) cray__store_release(c->store, w->held);
  cray__free(w);
}

/* The weight that goes with a ref to e leaving this rank. */
static uint64_t weight_out(cray__cluster *c, cray__entry *e) {
  weight *w = weight_of(c, &e->id);
  if (cray__id_owner(&e->id) == c->rank) {
    if (!w->held) cray__store_retain(e), w->held = e;
    w->w += GRANT;
    return GRANT;
  }
  if (w->w < 2 || w->stuck) {
    w->stuck = 1;
    return 0;
  }
  uint64_t half = w->w / 2;
  w->w -= half;
  return half;
}

/* Weight w came back to the owner (nested in a value, or in M_RETURN). */
static void weight_home(cray__cluster *c, int source, const cray_id *id, uint64_t w) {
  if (!w) return; /* a stuck ref came home: it carries none */
  weight **slot = weight_slot(c, id);
  if (!*slot || (*slot)->w < w) protocol_error(c, source, "more weight returned than lent");
  if (((*slot)->w -= w) == 0) weight_drop(c, slot);
}

/* Any thread: the last entry here for another rank's object was freed. */
static void remote_gone(void *ctx, const cray_id *id) {
  cray__cluster *c = ctx;
  intent *in = intent_new(c, I_GONE);
  in->id = *id;
  push(c, in);
}

static void gone(cray__cluster *c, const cray_id *id) {
  weight **slot = weight_slot(c, id);
  if (!*slot || --(*slot)->live) return;
  int owner = cray__id_owner(id);
  if (!(*slot)->stuck && (*slot)->w) {
    put_id(&c->returns[owner], id);
    put_u64(&c->returns[owner], (*slot)->w);
    c->nreturns[owner]++;
  }
  weight_drop(c, slot);
}

/* Sends the weight that this round's frees gave back, one message per owner. */
static void flush_returns(cray__cluster *c) {
  for (int r = 0; r < c->size; r++) {
    if (!c->nreturns[r]) continue;
    put_u8(&c->scratch, M_RETURN);
    put_u32(&c->scratch, c->nreturns[r]);
    cray__buf_write(&c->scratch, c->returns[r].data, c->returns[r].len);
    send_ctrl(c, r);
    c->returns[r].len = 0;
    c->nreturns[r] = 0;
  }
}

/* Writes b (NULL: none) into the scratch message for dest: its header, its nested refs'
 * ids, and its bytes when they are short; longer ones are queued as chunks (b is held
 * for them). */
static void put_blob(cray__cluster *c, int dest, cray__blob *b) {
  cray__buf *m = &c->scratch;
  put_u8(m, b != NULL);
  if (!b) return;
  put_u32(m, b->count);
  put_u32(m, b->flags & CRAY__BLOB_TRUSTED);
  put_u32(m, b->nrefs);
  for (uint32_t i = 0; i < b->nrefs; i++) {
    put_id(m, &b->refs[i]->id);
    put_u64(m, weight_out(c, b->refs[i]) | (b->refs[i]->actor ? ACTOR_REF : 0));
  }
  put_u64(m, b->len);
  if (b->len <= INLINE_MAX) {
    cray__buf_write(m, b->data, b->len);
    return;
  }
  bulk *k = cray__malloc(sizeof *k);
  if (!k) fatal(c, "out of memory for a transfer");
  cray__blob_retain(b);
  *k = (bulk){NULL, b, 0};
  if (c->out_tail[dest]) c->out_tail[dest]->next = k;
  else c->out_head[dest] = k;
  c->out_tail[dest] = k;
}

/* Sends M_RESULT or M_OBJECT for e, resolved, to dest, under id (e's own, or the one a
 * monitor has there). */
static void send_entry(cray__cluster *c, int dest, int kind, cray__entry *e, const cray_id *id) {
  cray__blob *b = NULL;
  int failed = cray__entry_state(e) == CRAY__FAILED;
  if (cray__store_pin(c->store, e, &b) == 0) {
    cray__blob_retain(b);
    cray__store_unpin(e);
  } else {
    char hex[33];
    cray_id_format(&e->id, hex);
    b = cray__error_blob("object_lost", NULL, NULL,
                         "object %s could not be read back from rank %d's spill directory", hex,
                         c->rank);
    failed = 1;
    if (!b) fatal(c, "out of memory for an error");
  }
  put_u8(&c->scratch, (unsigned)kind);
  put_id(&c->scratch, id);
  put_u8(&c->scratch, failed ? OBJ_FAILED : OBJ_READY);
  put_blob(c, dest, b);
  send_ctrl(c, dest);
  cray__blob_release(c->store, b);
}

/* Sends M_OBJECT or M_MONITORED (kind) saying that id is lost. */
static void send_lost(cray__cluster *c, int dest, int kind, const cray_id *id) {
  put_u8(&c->scratch, (unsigned)kind);
  put_id(&c->scratch, id);
  put_u8(&c->scratch, OBJ_LOST);
  put_u8(&c->scratch, 0);
  send_ctrl(c, dest);
}

/* Posts the next chunks of the values queued for each destination. */
static int post_chunks(cray__cluster *c) {
  int did = 0;
  for (int d = 0; d < c->size; d++) {
    while (c->out_head[d] && c->chunks_out[d] < CHUNKS_IN_FLIGHT) {
      bulk *k = c->out_head[d];
      size_t n = k->blob->len - k->off < CHUNK ? k->blob->len - k->off : CHUNK;
      void *req;
      if (c->tp->isend(d, TAG_DATA, k->blob->data + k->off, n, &req) != 0) fatal(c, "send");
      cray__blob_retain(k->blob);
      add_send(c, (sendreq){req, NULL, k->blob, d});
      c->chunks_out[d]++;
      k->off += n;
      if (k->off == k->blob->len) {
        if (!(c->out_head[d] = k->next)) c->out_tail[d] = NULL;
        cray__blob_release(c->store, k->blob);
        cray__free(k);
      }
      did = 1;
    }
  }
  return did;
}

/* Frees the sends that completed. */
static int test_sends(cray__cluster *c) {
  size_t j = 0;
  int did = 0;
  for (size_t i = 0; i < c->nsends; i++) {
    sendreq *r = &c->sends[i];
    int done = c->tp->test(r->req);
    if (done < 0) fatal(c, "send");
    if (!done) {
      c->sends[j++] = *r;
      continue;
    }
    did = 1;
    cray__free(r->buf);
    if (r->blob) cray__blob_release(c->store, r->blob);
    if (r->chunk_dest >= 0) c->chunks_out[r->chunk_dest]--;
  }
  c->nsends = j;
  return did;
}

/* ---- watching entries for other ranks ---- */

static void watch_fired(cray__waiter *w) {
  intent *in = container_of(w, intent, waiter);
  push(in->c, in);
}

/* Sends e's value (kind M_RESULT or M_OBJECT) to dest under id once it resolves; takes
 * over the caller's reference to e. */
static void watch(cray__cluster *c, cray__entry *e, int kind, int dest, const cray_id *id) {
  intent *in = intent_new(c, I_SEND);
  in->msg = kind;
  in->id = *id;
  in->rank = dest;
  in->entry = e;
  in->waiter.wake = watch_fired;
  in->node.waiter = &in->waiter;
  in->wnext = c->watches;
  if (c->watches) c->watches->wprev = in;
  c->watches = in;
  if (cray__store_subscribe(c->store, e, &in->node) != 0) push(c, in);
}

static void unwatch(cray__cluster *c, intent *in) {
  if (in->wprev) in->wprev->wnext = in->wnext;
  else c->watches = in->wnext;
  if (in->wnext) in->wnext->wprev = in->wprev;
  cray__store_release(c->store, in->entry);
  cray__free(in);
}

/* ---- shadows: tasks sent elsewhere ---- */

static shadow **shadow_slot(cray__cluster *c, const cray_id *task_id) {
  shadow **p = &c->shadows[cray__id_hash(task_id) % SHADOW_BUCKETS];
  while (*p && !cray__id_eq(&(*p)->task->id, task_id)) p = &(*p)->next;
  return p;
}

static void shadow_done(cray__cluster *c, shadow **slot) {
  shadow *sh = *slot;
  *slot = sh->next;
  cray__task_release(c->store, sh->task);
  cray__free(sh);
  /* relaxed: a count, read as a hint */
  atomic_fetch_sub_explicit(&c->inflight, 1, memory_order_relaxed);
}

static void shadow_dep_resolved(cray__waiter *w) {
  cray__task *t = container_of(w, cray__task, dep_waiter);
  /* acq_rel: the last resolver sees every subscription made before it */
  if (atomic_fetch_sub_explicit(&t->deps_left, 1, memory_order_acq_rel) == 1) {
    intent *in = t->exec;
    push(in->c, in);
  }
}

void cray__cluster_submit(cray__cluster *c, cray__store *s, cray__task *t, int node) {
  pthread_mutex_lock(&c->mu);
  int attached = c->attached;
  if (attached) {
    intent *in = intent_new(c, I_SUBMIT);
    in->task = t;
    in->rank = node;
    intent *ship_in = intent_new(c, I_SHIP);
    ship_in->table = node;
    t->exec = ship_in;
    /* relaxed: a count, read as a hint */
    atomic_fetch_add_explicit(&c->inflight, 1, memory_order_relaxed);
    push(c, in);
  }
  pthread_mutex_unlock(&c->mu);
  if (attached) return;
  cray__blob *err = cray__error_blob("cancelled", t->name, NULL,
                                     "task '%s' was not sent to rank %d: the runtime shut down",
                                     t->name ? t->name : "?", node);
  if (err) cray__task_fail(s, t, err);
  cray__task_release(s, t);
}

static void ship(cray__cluster *c, intent *in);
static void took_items(void *ctx, cray__stream *st, size_t taken);

/* Keeps the task of `in` as a shadow and sends it once its arguments are ready. */
static void shadow_add(cray__cluster *c, intent *in) {
  cray__task *t = in->task;
  intent *ship_in = t->exec;
  ship_in->task = t;
  ship_in->rank = in->rank;
  cray__free(in);
  shadow *sh = cray__malloc(sizeof *sh);
  if (!sh) fatal(c, "out of memory for a task");
  *sh = (shadow){NULL, t, t->nreturns, ship_in->rank, 0};
  *shadow_slot(c, &t->id) = sh;
  t->dep_waiter.wake = shadow_dep_resolved;
  if (t->stream) cray__stream_link(t->stream, NULL, took_items, c);
  /* Running, as far as the scheduler can tell: cray__sched_cancel leaves it alone. */
  atomic_store_explicit(&t->state, CRAY__TASK_RUNNING, memory_order_relaxed);
  if (t->method) { /* an actor call goes at once: its rank waits for its arguments */
    atomic_store_explicit(&t->deps_left, 0, memory_order_relaxed); /* relaxed: no waker */
    ship(c, ship_in);
    return;
  }
  /* One extra count while subscribing, so it cannot leave halfway (as in sched.c).
   * relaxed: no wake can run before the first subscription below. */
  atomic_store_explicit(&t->deps_left, t->ndeps + 1, memory_order_relaxed);
  uint32_t ready = 1;
  for (uint32_t i = 0; i < t->ndeps; i++) {
    t->dep_nodes[i].waiter = &t->dep_waiter;
    if (cray__store_subscribe(c->store, t->deps[i], &t->dep_nodes[i]) != 0) ready++;
  }
  /* acq_rel: as in shadow_dep_resolved */
  if (atomic_fetch_sub_explicit(&t->deps_left, ready, memory_order_acq_rel) == ready)
    ship(c, ship_in);
}

/* Writes t's argument dependencies (not its function's: that one travels as an id). */
static void put_deps(cray__buf *m, const cray__task *t) {
  uint32_t ndeps = 0;
  for (uint32_t i = 0; i < t->ndeps; i++) ndeps += t->dep_arg[i] != CRAY__DEP_FUNCTION;
  put_u32(m, ndeps);
  for (uint32_t i = 0; i < t->ndeps; i++) {
    if (t->dep_arg[i] == CRAY__DEP_FUNCTION) continue;
    put_id(m, &t->deps[i]->id);
    put_u32(m, t->dep_arg[i]);
  }
}

/* Sends the shadow's task to its rank: M_TASK with its ids, options and arguments (and
 * for an actor call, where its method's name starts in its name; its function is the
 * actor). */
static void ship(cray__cluster *c, intent *in) {
  cray__task *t = in->task;
  int dest = in->rank;
  const cray__cluster_node *table = &c->nodes[in->table];
  cray__free(in);
  if (!c->rt) return; /* the shadow is released with the others */
  t->exec = NULL;
  shadow **slot = shadow_slot(c, &t->id);
  /* relaxed: set on this thread (cancel_task) or before the task was handed over */
  if (atomic_load_explicit(&t->cancelled, memory_order_relaxed)) {
    cray__blob *err = cray__error_blob("cancelled", t->name, NULL, "task '%s' was cancelled",
                                       t->name ? t->name : "?");
    if (!err) fatal(c, "out of memory for an error");
    cray__task_fail(c->store, t, err);
    shadow_done(c, slot);
    return;
  }
  (*slot)->shipped = 1;
  cray__buf *m = &c->scratch;
  put_u8(m, M_TASK);
  put_id(m, &t->id);
  put_u32(m, t->nreturns);
  put_u8(m, (unsigned)t->all_values);
  put_u32(m, (uint32_t)t->max_retries);
  put_u8(m, (unsigned)t->retry_exceptions);
  put_u8(m, (unsigned)t->placed);
  put_u64(m, t->stream ? (uint64_t)cray__stream_bound(t->stream) + 1 : 0);
  size_t namelen = t->name ? strlen(t->name) : 0;
  put_u32(m, t->name ? (uint32_t)namelen : UINT32_MAX);
  cray__buf_write(m, t->name, namelen);
  put_u32(m, t->method && t->name ? (uint32_t)(t->method - t->name) : NOT_A_CALL);
  put_u32(m, (uint32_t)t->nresources);
  for (int i = 0; i < t->nresources; i++) {
    put_str(m, table->resource_names[t->resources[i].index]);
    put_f64(m, t->resources[i].amount);
  }
  put_id(m, &t->fn->id);
  put_deps(m, t);
  put_blob(c, dest, t->args);
  send_ctrl(c, dest);
}

/* ---- cancel ---- */

int cray__cluster_cancel(cray__cluster *c, cray__entry *e) {
  if (cray__id_owner(&e->id) != c->rank || !(e->id.lo & CRAY__ID_MAX_INDEX) ||
      cray__entry_state(e) != CRAY__PENDING)
    return 0;
  intent *in = intent_new(c, I_CANCEL);
  in->id = e->id;
  push(c, in);
  return 1;
}

/* Cancels the task whose return is id: a shadow here that waits for its arguments fails
 * now, one sent elsewhere is cancelled there; a task running here is cancelled as
 * cray.cancel does in one process. */
static void cancel_task(cray__cluster *c, const cray_id *id) {
  cray_id task_id = cray__id_with_index(*id, 0);
  shadow *sh = *shadow_slot(c, &task_id);
  if (sh && sh->shipped) {
    put_u8(&c->scratch, M_CANCEL);
    put_id(&c->scratch, id);
    send_ctrl(c, sh->dest);
    return;
  }
  if (sh) {
    cray__task *t = sh->task;
    /* relaxed: ship, on this thread, reads it */
    atomic_store_explicit(&t->cancelled, 1, memory_order_relaxed);
    for (uint32_t d = 0; d < t->ndeps; d++)
      cray__store_unsubscribe(c->store, t->deps[d], &t->dep_nodes[d]);
    /* No wake runs any more: when none has sent it off, it goes now (and fails). acq_rel:
     * as in shadow_dep_resolved. */
    if (atomic_exchange_explicit(&t->deps_left, 0, memory_order_acq_rel) > 0) push(c, t->exec);
    return;
  }
  cray__entry *e = c->sched ? cray__store_lookup(c->store, id) : NULL;
  if (e) {
    cray__sched_cancel(c->sched, e, 1); /* as Ray does: the tasks it started too */
    cray__store_release(c->store, e);
  }
}

/* ---- work stealing ---- */

typedef struct thief {
  cray__cluster *c;
  int rank;
} thief;

/* Whether t may run on the thief's rank: it has every resource t needs, as much as t
 * needs, and no actor handle is among the refs in t's arguments or function (actors live
 * on their own rank: docs/cluster.md). Called under a worker's lock, so it takes no store
 * lock: it pins the function's blob only on the fast path and keeps the task when the
 * function is spilled or being swapped. */
static int may_move(void *ctx, cray__task *t) {
  thief *th = ctx;
  if (t->stream && cray__id_owner(&t->id) != th->c->rank) return 0; /* its stream is linked */
  const cray__cluster_node *here = &th->c->nodes[th->c->rank], *there = &th->c->nodes[th->rank];
  for (int i = 0; i < t->nresources; i++)
    if (cray__cluster_node_resource(there, here->resource_names[t->resources[i].index]) <
        t->resources[i].amount)
      return 0;
  if (t->args)
    for (uint32_t i = 0; i < t->args->nrefs; i++)
      if (t->args->refs[i]->actor) return 0;
  if (cray__entry_state(t->fn) != CRAY__READY) return 0;
  /* acquire: as in cray__store_pin */
  uint32_t p = atomic_fetch_add_explicit(&t->fn->pins, 1, memory_order_acquire);
  /* acquire: as in cray__store_pin (a spilled one stays here, as one being swapped) */
  int ok = !(p & CRAY__EVICTING) && !atomic_load_explicit(&t->fn->spilled, memory_order_acquire);
  if (ok) {
    /* acquire: as in cray__store_pin */
    cray__blob *fn = atomic_load_explicit(&t->fn->stored, memory_order_acquire);
    for (uint32_t i = 0; i < fn->nrefs && ok; i++) ok = !fn->refs[i]->actor;
  }
  cray__store_unpin(t->fn);
  return ok;
}

/* M_STEAL from thief: up to STEAL_BATCH tasks that have not started go there, then
 * M_STOLEN says how many. */
static void give_work(cray__cluster *c, int to) {
  cray__task *tasks[STEAL_BATCH];
  thief th = {c, to};
  int n = c->rt && c->sched ? cray__sched_give(c->sched, tasks, STEAL_BATCH, may_move, &th) : 0;
  for (int i = 0; i < n; i++) {
    intent *in = intent_new(c, I_SUBMIT);
    in->task = tasks[i];
    in->rank = to;
    intent *ship_in = intent_new(c, I_SHIP);
    ship_in->table = c->rank;
    tasks[i]->exec = ship_in;
    /* relaxed: a count, read as a hint */
    atomic_fetch_add_explicit(&c->inflight, 1, memory_order_relaxed);
    shadow_add(c, in);
  }
  put_u8(&c->scratch, M_STOLEN);
  put_u32(&c->scratch, (uint32_t)n);
  send_ctrl(c, to);
}

/* A rank whose workers all sleep asks the others for work, one at a time in turn, and
 * waits longer after each request that brought nothing. */
static void maybe_steal(cray__cluster *c) {
  if (!c->sched || !c->rt || c->size < 2 || c->stealing || !cray__sched_idle(c->sched)) return;
  double now = cray__now();
  if (now < c->next_steal) return;
  c->victim = (c->victim + 1) % c->size;
  if (c->victim == c->rank) c->victim = (c->victim + 1) % c->size;
  put_u8(&c->scratch, M_STEAL);
  send_ctrl(c, c->victim);
  c->stealing = 1;
}

static void stolen(cray__cluster *c, uint32_t n) {
  c->stealing = 0;
  if (n) {
    c->steal_wait = 0;
    return;
  }
  c->steal_wait = c->steal_wait < STEAL_WAIT_MIN ? STEAL_WAIT_MIN : c->steal_wait * 2;
  if (c->steal_wait > STEAL_WAIT_MAX) c->steal_wait = STEAL_WAIT_MAX;
  c->next_steal = cray__now() + c->steal_wait;
}

/* ---- receiving ---- */

typedef struct rd {
  const uint8_t *p, *end;
  int bad;
} rd;

static const uint8_t *get_bytes(rd *r, size_t n) {
  if (r->bad || (size_t)(r->end - r->p) < n) {
    r->bad = 1;
    return NULL;
  }
  const uint8_t *p = r->p;
  r->p += n;
  return p;
}
static unsigned get_u8(rd *r) {
  const uint8_t *p = get_bytes(r, 1);
  return p ? *p : 0;
}
static uint32_t get_u32(rd *r) {
  const uint8_t *p = get_bytes(r, 4);
  return p ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3] : 0;
}
static uint64_t get_u64(rd *r) {
  uint64_t hi = get_u32(r);
  return hi << 32 | get_u32(r);
}
static cray_id get_id(rd *r) {
  const uint8_t *p = get_bytes(r, 16);
  cray_id none = {0, 0};
  return p ? cray__id_load(p) : none;
}
static double get_f64(rd *r) {
  uint64_t u = get_u64(r);
  double v;
  memcpy(&v, &u, sizeof v);
  return v;
}
/* A copy of a string (NUL-terminated), or NULL when the message is short (r->bad). */
static char *get_str(cray__cluster *c, rd *r) {
  uint32_t n = get_u32(r);
  const uint8_t *p = get_bytes(r, n);
  if (!p) return NULL;
  char *str = cray__malloc((size_t)n + 1);
  if (!str) fatal(c, "out of memory for a message");
  memcpy(str, p, n);
  str[n] = 0;
  return str;
}

/* ---- streaming tasks across ranks ----
 *
 * A streaming task sent elsewhere has a stream on each side, under the same ids
 * (stream.h). Where it runs, each item goes to the task's owner as M_ITEM as soon as it
 * is made, so items arrive in order and before the task's end (its M_RESULT, sent when
 * its return resolves, after the last item was pushed); the owner puts each in its
 * stream. While a bound applies, the owner's consumer reports its takes (M_TOOK), which
 * let a paused producer go on; a consumer that is gone says so, and the producer no
 * longer pauses. A task served here never moves again, so these go to one rank. */

static served **served_slot(cray__cluster *c, const cray_id *task_id) {
  served **p = &c->streams;
  while (*p && !cray__id_eq(&(*p)->st->base, task_id)) p = &(*p)->next;
  return p;
}

/* The producer's side, any thread: the item goes to the task's owner. */
static int forward_item(void *ctx, cray__stream *st, cray__entry *item) {
  cray__cluster *c = ctx;
  pthread_mutex_lock(&c->mu);
  int attached = c->attached;
  if (attached) {
    intent *in = intent_new(c, I_ITEM);
    in->entry = item;
    in->id = item->id;
    in->rank = cray__id_owner(&st->base);
    push(c, in);
  }
  pthread_mutex_unlock(&c->mu);
  return !attached;
}

/* The consumer's side, any thread: its takes go to the rank that runs the task. */
static void took_items(void *ctx, cray__stream *st, size_t taken) {
  cray__cluster *c = ctx;
  pthread_mutex_lock(&c->mu);
  if (c->attached) {
    intent *in = intent_new(c, I_TOOK);
    in->id = st->base;
    in->count = taken == SIZE_MAX ? UINT64_MAX : (uint64_t)taken;
    push(c, in);
  }
  pthread_mutex_unlock(&c->mu);
}

/* A streaming task t that came from another rank gets the producer's side of a stream,
 * bounded as its consumer asked. */
static void serve_stream(cray__cluster *c, cray__task *t, uint64_t backpressure) {
  cray__stream *st = cray__stream_new(c->store, &c->rt->ids, t->id, (size_t)backpressure);
  served *sv = cray__malloc(sizeof *sv);
  if (!st || !sv) fatal(c, "out of memory for a stream");
  cray__stream_link(st, forward_item, NULL, c);
  t->stream = st;
  t->max_retries = 0; /* as in one process: a run again would stream its values again */
  *sv = (served){c->streams, st};
  c->streams = sv;
}

/* The end of a task served here was sent (ret: one of its returns): its stream, if it
 * streams, has nothing more to send. */
static void served_end(cray__cluster *c, const cray_id *ret) {
  cray_id task_id = cray__id_with_index(*ret, 0);
  served **slot = served_slot(c, &task_id), *sv = *slot;
  if (!sv) return;
  *slot = sv->next;
  cray__stream_release(sv->st);
  cray__free(sv);
}

/* I_TOOK: the consumer's count goes to the rank that runs its task. */
static void send_took(cray__cluster *c, intent *in) {
  shadow *sh = *shadow_slot(c, &in->id);
  if (!sh || !sh->shipped) return;
  put_u8(&c->scratch, M_TOOK);
  put_id(&c->scratch, &in->id);
  put_u64(&c->scratch, in->count);
  send_ctrl(c, sh->dest);
}

/* M_TOOK from a consumer. */
static void took(cray__cluster *c, int source, rd *r) {
  cray_id id = get_id(r);
  uint64_t n = get_u64(r);
  if (r->bad) protocol_error(c, source, "took");
  served *sv = *served_slot(c, &id);
  if (sv) cray__stream_taken(sv->st, n == UINT64_MAX ? SIZE_MAX : (size_t)n);
}

/* M_ITEM complete: the next item of a streaming task sent from here. */
static void item_arrived(cray__cluster *c, pmsg *m) {
  cray_id task_id = cray__id_with_index(m->id, 0);
  shadow *sh = *shadow_slot(c, &task_id);
  cray__entry *resume = NULL; /* its consumer's side never pauses (stream.h) */
  if (sh && sh->task->stream) cray__stream_put(sh->task->stream, m->blob, &resume);
  else cray__blob_release(c->store, m->blob);
}

/* ---- nodes and reports ---- */

const cray__cluster_node *cray__cluster_node_of(const cray__cluster *c, int k) {
  return &c->nodes[k];
}

double cray__cluster_node_resource(const cray__cluster_node *n, const char *name) {
  for (int i = 0; i < n->nresources; i++)
    if (strcmp(n->resource_names[i], name) == 0) return n->resource_counts[i];
  return -1;
}

static void read_node(cray__cluster *c, int k, const uint8_t *buf, size_t len) {
  rd r = {buf, buf + len, 0};
  cray__cluster_node *n = &c->nodes[k];
  n->workers = (int)get_u32(&r);
  n->pid = (int)get_u32(&r);
  n->host = get_str(c, &r);
  uint32_t nres = get_u32(&r);
  if (r.bad || nres > (size_t)(r.end - r.p) / 12) protocol_error(c, k, "node");
  n->resource_names = cray__calloc((size_t)nres + 1, sizeof *n->resource_names);
  n->resource_counts = cray__calloc((size_t)nres + 1, sizeof *n->resource_counts);
  if (!n->resource_names || !n->resource_counts) fatal(c, "out of memory for the nodes");
  for (uint32_t i = 0; i < nres && !r.bad; i++, n->nresources++) {
    n->resource_names[i] = get_str(c, &r);
    n->resource_counts[i] = get_f64(&r);
  }
  if (r.bad) protocol_error(c, k, "node");
}

/* Every rank tells every other its workers, host name and resources (a collective). */
static void exchange_nodes(cray__cluster *c) {
  const cray_options *o = &c->rt->opts;
  cray__buf *m = &c->scratch;
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  put_u32(m, (uint32_t)o->workers);
  put_u32(m, (uint32_t)getpid());
  put_str(m, host);
  put_u32(m, (uint32_t)o->nresources);
  for (int i = 0; i < o->nresources; i++) {
    put_str(m, o->resource_names[i]);
    put_f64(m, o->resource_counts[i]);
  }
  if (m->failed) fatal(c, "out of memory for the nodes");
  if (!(c->nodes = cray__calloc((size_t)c->size, sizeof *c->nodes)))
    fatal(c, "out of memory for the nodes");
  for (int k = 0; k < c->size; k++) {
    uint64_t len = k == c->rank ? m->len : 0;
    if (c->tp->bcast(&len, sizeof len, k) != 0) fatal(c, "telling the ranks about each other");
    c->recvbuf.len = 0;
    uint8_t *buf = k == c->rank ? m->data : cray__buf_reserve(&c->recvbuf, len ? len : 1);
    if (!buf) fatal(c, "out of memory for the nodes");
    if (c->tp->bcast(buf, len, k) != 0) fatal(c, "telling the ranks about each other");
    read_node(c, k, buf, len);
  }
  m->len = 0;
}

static void free_nodes(cray__cluster *c) {
  for (int k = 0; c->nodes && k < c->size; k++) {
    cray__cluster_node *n = &c->nodes[k];
    for (int i = 0; i < n->nresources; i++) cray__free(n->resource_names[i]);
    cray__free(n->resource_names);
    cray__free(n->resource_counts);
    cray__free(n->host);
  }
  cray__free(c->nodes);
}

void cray__cluster_counts(cray_runtime *rt, cray__sched *s, uint64_t v[CRAY__REPORT_N]) {
  cray_store_stats st;
  cray_store_stats_get(rt, &st);
  cray__sched_stats ts = {0, 0, 0, 0};
  if (s) cray__sched_stats_get(s, &ts);
  v[CRAY__REPORT_SUBMITTED] = ts.submitted;
  v[CRAY__REPORT_RUNNING] = ts.running;
  v[CRAY__REPORT_FINISHED] = ts.finished;
  v[CRAY__REPORT_FAILED] = ts.failed;
  v[CRAY__REPORT_ACTORS] = s ? cray__sched_actors_alive(s) : 0;
  v[CRAY__REPORT_OBJECTS] = st.objects;
  v[CRAY__REPORT_BYTES] = st.bytes;
  v[CRAY__REPORT_BUDGET] = st.budget;
  v[CRAY__REPORT_SPILLED_OBJECTS] = st.spilled_objects;
  v[CRAY__REPORT_SPILLED_BYTES] = st.spilled_bytes;
  v[CRAY__REPORT_RESTORED_OBJECTS] = st.restored_objects;
  v[CRAY__REPORT_PUTS] = st.puts;
  v[CRAY__REPORT_FREES] = st.frees;
  v[CRAY__REPORT_PEAK_BYTES] = st.peak_bytes;
}

/* rep->free is allocated for rank k's resources (one more, never zero). */
static void report_alloc(cray__cluster *c, int k, cray__cluster_report *rep) {
  memset(rep->v, 0, sizeof rep->v);
  int n = c->nodes ? c->nodes[k].nresources : 0;
  cray__free(rep->free);
  rep->free = cray__calloc((size_t)n + 1, sizeof *rep->free);
  if (!rep->free) fatal(c, "out of memory for a report");
}

/* This rank's report (zeros once its runtime closed). */
static void own_report(cray__cluster *c, cray__cluster_report *rep) {
  report_alloc(c, c->rank, rep);
  if (!c->rt || !c->sched) return;
  cray__cluster_counts(c->rt, c->sched, rep->v);
  cray__sched_resources_free(c->sched, rep->free);
}

static void query_finish(cray__cluster *c, query *q, int failed) {
  q->failed = failed;
  signal_done(c, &q->done);
}

/* A timeline query (op) done on this rank: recording started or stopped, or its events
 * read into *out. */
static void trace_here(cray__cluster *c, int op, cray__trace_rank *out) {
  int rc = 0;
  if (op == CRAY__QUERY_TRACE_START) rc = cray__trace_start();
  else if (op == CRAY__QUERY_TRACE_STOP) cray__trace_stop();
  else if ((rc = cray__trace_snapshot(&out->ev, &out->n, &out->dropped)) == 0)
    out->wall = cray__trace_wall();
  if (rc) fatal(c, "out of memory for the timeline");
}

/* A recorded event in a message: its interned names travel as texts. */
static void put_event(cray__buf *m, const cray__tev *e) {
  put_u8(m, (unsigned)e->type);
  put_u8(m, (unsigned)e->aux);
  put_u32(m, (uint32_t)e->tid);
  put_u64(m, e->t0);
  put_u64(m, e->t1);
  put_id(m, &e->id);
  put_id(m, &e->actor);
  put_u64(m, e->bytes);
  put_str(m, cray__trace_name(e->name));
  put_str(m, cray__trace_name(e->name2));
  put_str(m, e->ptr ? e->ptr : "");
}

/* I_QUERY: this rank's answer now, the others' when they answer M_QUERY. */
static void query_start(cray__cluster *c, query *q) {
  if (!c->rt) {
    query_finish(c, q, 1);
    return;
  }
  q->seq = ++c->query_seq;
  q->left = c->size - 1;
  if (q->op == CRAY__QUERY_REPORT) own_report(c, &q->out[c->rank]);
  else trace_here(c, q->op, q->ranks ? &q->ranks[c->rank] : NULL);
  for (int k = 0; k < c->size; k++) {
    if (k == c->rank) continue;
    put_u8(&c->scratch, M_QUERY);
    put_u32(&c->scratch, q->seq);
    put_u8(&c->scratch, (unsigned)q->op);
    send_ctrl(c, k);
  }
  if (!q->left) {
    query_finish(c, q, 0);
    return;
  }
  q->next = c->queries;
  c->queries = q;
}

/* M_QUERY seq from source: this rank's answer goes back. */
static void answer_query(cray__cluster *c, int source, uint32_t seq, int op) {
  if (op != CRAY__QUERY_REPORT) {
    cray__trace_rank mine = {NULL, 0, 0, 0};
    trace_here(c, op, &mine);
    put_u8(&c->scratch, M_REPORT);
    put_u32(&c->scratch, seq);
    if (op == CRAY__QUERY_TRACE_READ) {
      put_f64(&c->scratch, mine.wall);
      put_u64(&c->scratch, mine.dropped);
      put_u64(&c->scratch, mine.n);
      for (size_t i = 0; i < mine.n; i++) put_event(&c->scratch, &mine.ev[i]);
    }
    send_ctrl(c, source);
    cray__free(mine.ev);
    return;
  }
  cray__cluster_report rep = {{0}, NULL};
  own_report(c, &rep);
  int nfree = c->rt && c->nodes ? c->nodes[c->rank].nresources : 0;
  put_u8(&c->scratch, M_REPORT);
  put_u32(&c->scratch, seq);
  for (int i = 0; i < CRAY__REPORT_N; i++) put_u64(&c->scratch, rep.v[i]);
  put_u32(&c->scratch, (uint32_t)nfree);
  for (int i = 0; i < nfree; i++) put_f64(&c->scratch, rep.free[i]);
  send_ctrl(c, source);
  cray__free(rep.free);
}

/* Reads a report of rank source into rep. */
static void report_one(cray__cluster *c, int source, rd *r, cray__cluster_report *rep) {
  report_alloc(c, source, rep);
  for (int i = 0; i < CRAY__REPORT_N; i++) rep->v[i] = get_u64(r);
  uint32_t nfree = get_u32(r);
  for (uint32_t i = 0; i < nfree && !r->bad; i++) {
    double units = get_f64(r);
    if (c->nodes && (int)i < c->nodes[source].nresources) rep->free[i] = units;
  }
  if (r->bad) protocol_error(c, source, "report");
}

/* An interned name here for a text in a message (0 for none). */
static uint32_t read_name(cray__cluster *c, rd *r) {
  char *text = get_str(c, r);
  uint32_t name = text && *text ? cray__trace_intern(text) : 0;
  cray__free(text);
  return name;
}

/* Reads rank source's recorded events (put by answer_query) into out. */
static void read_events(cray__cluster *c, int source, rd *r, cray__trace_rank *out) {
  out->wall = get_f64(r);
  out->dropped = get_u64(r);
  uint64_t n = get_u64(r);
  if (r->bad || n > (size_t)(r->end - r->p) / 74) protocol_error(c, source, "timeline");
  if (!(out->ev = cray__calloc((size_t)n + 1, sizeof *out->ev))) fatal(c, "out of memory for the timeline");
  for (out->n = 0; out->n < n && !r->bad; out->n++) {
    cray__tev *e = &out->ev[out->n];
    e->type = (int)get_u8(r);
    e->aux = (int)get_u8(r);
    e->tid = (int)get_u32(r);
    e->t0 = get_u64(r);
    e->t1 = get_u64(r);
    e->id = get_id(r);
    e->actor = get_id(r);
    e->bytes = get_u64(r);
    e->name = read_name(c, r);
    e->name2 = read_name(c, r);
    uint32_t ptr = read_name(c, r);
    e->ptr = ptr ? cray__trace_name(ptr) : NULL;
  }
  if (r->bad) protocol_error(c, source, "timeline");
}

/* M_REPORT from source: one more answer to the query seq. */
static void take_report(cray__cluster *c, int source, rd *r) {
  uint32_t seq = get_u32(r);
  query **p = &c->queries;
  while (*p && (*p)->seq != seq) p = &(*p)->next;
  if (!*p) return; /* this rank's runtime closed since it asked */
  query *q = *p;
  if (q->op == CRAY__QUERY_TRACE_READ) {
    read_events(c, source, r, &q->ranks[source]);
  } else if (q->op == CRAY__QUERY_REPORT) {
    report_one(c, source, r, &q->out[source]);
  }
  if (--q->left) return;
  *p = q->next;
  query_finish(c, q, 0);
}

/* Hands q to the communication thread and waits for every rank's answer: 0, or -1 when
 * this rank's runtime is closing. */
static int run_query(cray__cluster *c, query *q) {
  intent *in = intent_new(c, I_QUERY);
  in->ptr = q;
  pthread_mutex_lock(&c->mu);
  if (!c->attached) {
    pthread_mutex_unlock(&c->mu);
    cray__free(in);
    return -1;
  }
  push(c, in);
  while (!q->done) pthread_cond_wait(&c->cv, &c->mu);
  pthread_mutex_unlock(&c->mu);
  return q->failed ? -1 : 0;
}

int cray__cluster_reports(cray__cluster *c, cray__cluster_report *out) {
  for (int k = 0; k < c->size; k++) out[k].free = NULL;
  query q = {.op = CRAY__QUERY_REPORT, .out = out};
  if (run_query(c, &q) == 0) return 0;
  cray__cluster_reports_free(c, out);
  return -1;
}

int cray__cluster_trace(cray__cluster *c, int op, cray__trace_rank *ranks) {
  query q = {.op = op, .ranks = ranks};
  return run_query(c, &q);
}

void cray__cluster_reports_free(cray__cluster *c, cray__cluster_report *out) {
  for (int k = 0; k < c->size; k++) {
    cray__free(out[k].free);
    out[k].free = NULL;
  }
}

/* The entry for id here, with one reference for the caller: the one that exists, or a
 * new pending one (flagged remote and counted live when another rank owns it). *made
 * says which. */
static cray__entry *local_entry(cray__cluster *c, const cray_id *id, int *made) {
  for (int tries = 0;; tries++) {
    cray__entry *e = cray__store_lookup(c->store, id);
    if ((*made = !e && (e = cray__store_insert(c->store, *id, NULL))) &&
        cray__id_owner(id) != c->rank) {
      e->remote = 1;
      weight_of(c, id)->live++;
    }
    if (e) return e;
    /* Its last reference is going: the old entry leaves the map in a moment. */
    if (tries == 100000) fatal(c, "out of memory for an object");
    sched_yield();
  }
}

/* The entry for id here, with one reference for the caller: the local one, or a new
 * pending proxy whose value is asked of its owner once something waits on it (lazy: a
 * ref only passed on is never pulled here). An actor's proxy (`actor`) has no value:
 * calls through it go to the actor's rank. */
static cray__entry *proxy(cray__cluster *c, const cray_id *id, int actor) {
  int made;
  cray__entry *e = local_entry(c, id, &made);
  if (!made) return e;
  int owner = cray__id_owner(id);
  if (actor && owner != c->rank && owner < c->size) {
    e->actor = CRAY__ENTRY_REMOTE_ACTOR;
    return e;
  }
  if (owner == c->rank || owner >= c->size) {
    char hex[33];
    cray_id_format(id, hex);
    cray__blob *b = cray__error_blob("object_lost", NULL, NULL,
                                     "object %s is lost: rank %d, its owner, no longer has it",
                                     hex, owner);
    if (!b) fatal(c, "out of memory for an error");
    cray__store_resolve(c->store, e, b, 1);
    return e;
  }
  /* Asked for when something waits on it (remote_wanted): no thread holds it yet. relaxed:
   * whoever gets e gets it through a lock or a queue that publishes this. */
  atomic_store_explicit(&e->unpulled, 1, memory_order_relaxed);
  return e;
}

/* Any thread: something waits on a proxy's value. */
static void remote_wanted(void *ctx, const cray_id *id) {
  cray__cluster *c = ctx;
  /* relaxed: a count, read as a hint; counted now, so a driver that waits on the proxy
   * is never taken for deadlocked before the request leaves */
  atomic_fetch_add_explicit(&c->inflight, 1, memory_order_relaxed);
  intent *in = intent_new(c, I_PULL);
  in->id = *id;
  push(c, in);
}

/* I_PULL: asks the owner for the value of the proxy id, if it is still here and pending. */
static void pull(cray__cluster *c, const cray_id *id) {
  cray__entry *e = c->rt ? cray__store_lookup(c->store, id) : NULL;
  if (!e || cray__entry_state(e) != CRAY__PENDING) {
    if (e) cray__store_release(c->store, e);
    /* relaxed: as in remote_wanted; no answer will come to take it back */
    atomic_fetch_sub_explicit(&c->inflight, 1, memory_order_relaxed);
    return;
  }
  cray__store_release(c->store, e);
  int owner = cray__id_owner(id);
  put_u8(&c->scratch, M_FETCH);
  put_id(&c->scratch, id);
  send_ctrl(c, owner);
  c->asked[owner]++;
}

/* Asks for e's value now, on the communication thread, when it is a proxy nothing asked
 * for yet: the message that named it is about to be answered as taken (M_TAKEN,
 * M_CREATED), after which its sender may free it. */
static void pull_now(cray__cluster *c, cray__entry *e) {
  /* relaxed: as in cray__store_want */
  if (atomic_load_explicit(&e->unpulled, memory_order_relaxed) &&
      atomic_exchange_explicit(&e->unpulled, 0, memory_order_relaxed)) {
    /* relaxed: a count, read as a hint, as in remote_wanted */
    atomic_fetch_add_explicit(&c->inflight, 1, memory_order_relaxed);
    pull(c, &e->id);
  }
}

/* Reads a value written by put_blob into *out (NULL when none), from source. Returns 1
 * when its bytes come later as chunks, 0 when it is complete. */
static int read_blob(cray__cluster *c, int source, rd *r, cray__blob **out) {
  *out = NULL;
  if (!get_u8(r)) return 0;
  uint32_t count = get_u32(r), flags = get_u32(r), nrefs = get_u32(r);
  if (r->bad || nrefs > (size_t)(r->end - r->p) / 24) {
    r->bad = 1;
    return 0;
  }
  cray__entry **refs = nrefs ? cray__malloc(nrefs * sizeof *refs) : NULL;
  if (nrefs && !refs) fatal(c, "out of memory for a value");
  for (uint32_t i = 0; i < nrefs; i++) {
    cray_id id = get_id(r);
    uint64_t w = get_u64(r);
    refs[i] = proxy(c, &id, (w & ACTOR_REF) != 0);
    w &= ~ACTOR_REF;
    if (cray__id_owner(&id) == c->rank) weight_home(c, source, &id, w);
    else weight_of(c, &id)->w += w;
  }
  uint64_t len = get_u64(r);
  /* A value from another rank waits for room in the budget as a put here does (the spill
   * thread makes it), so a rank that receives more than it can hold spills instead of
   * growing; when nothing more can leave memory it is let in, as a restore is. */
  if (!r->bad && c->store) cray__store_reserve(c->store, (size_t)len, 0);
  cray__blob *b = r->bad ? NULL
                         : cray__blob_alloc(c->store, (size_t)len, count, refs, nrefs,
                                            flags & CRAY__BLOB_TRUSTED);
  for (uint32_t i = 0; i < nrefs; i++) cray__store_release(c->store, refs[i]);
  cray__free(refs);
  if (r->bad) return 0;
  if (!b) fatal(c, "out of memory for a value");
  *out = b;
  if (len > INLINE_MAX) return 1;
  const uint8_t *p = get_bytes(r, (size_t)len);
  if (p) memcpy(b->data, p, (size_t)len);
  return 0;
}

/* A served task's return: its value goes to the task's owner once it resolves. An actor
 * call goes to its actor's mailbox, as a call made here would. */
static void serve_task(cray__cluster *c, cray__task *t) {
  int owner = cray__id_owner(&t->id);
  for (uint32_t i = 0; i < t->nreturns; i++) {
    cray__store_retain(t->returns[i]);
    watch(c, t->returns[i], M_RESULT, owner, &t->returns[i]->id);
  }
  if (!t->nreturns) { /* no result will free its shadow: its arguments are asked for first */
    for (uint32_t i = 0; i < t->ndeps; i++) pull_now(c, t->deps[i]);
    put_u8(&c->scratch, M_TAKEN);
    put_id(&c->scratch, &t->id);
    send_ctrl(c, owner);
  }
  int refused = 1;
  cray__blob *err;
  if (!c->sched) {
    err = cray__error_blob("task_error", t->name, NULL,
                           "rank %d cannot run tasks: it has no scheduler", c->rank);
  } else if (t->method && !t->actor) {
    err = cray__error_blob("actor_died", t->name, NULL,
                           "the actor of call '%s' is gone from rank %d; the call did not run",
                           t->name, c->rank);
  } else if (t->actor && cray__actor_count_pending(t->actor, t)) {
    char who[160];
    cray__actor_describe(t->actor, who, sizeof who);
    err = cray__error_blob("pending_calls_exceeded", t->name, NULL,
                           "%s has %d calls pending (max_pending_calls = %d): '%s' was not run",
                           who, t->actor->max_pending_calls, t->actor->max_pending_calls,
                           t->name);
  } else {
    refused = 0;
    err = NULL;
  }
  if (refused) {
    if (!err) fatal(c, "out of memory for an error");
    cray__task_fail(c->store, t, err);
    cray__task_release(c->store, t);
    return;
  }
  cray__sched_submit(c->sched, t);
}

/* Keeps fn, another rank's function, for the next tasks that run it here: their messages
 * then find its value at once instead of asking its owner again. The oldest of FN_CACHE
 * goes. Its bytes never change, so a copy kept after its owner freed it is still right. */
static void cache_fn(cray__cluster *c, cray__entry *fn) {
  if (cray__id_owner(&fn->id) == c->rank) return;
  for (unsigned i = 0; i < FN_CACHE; i++)
    if (c->fns[i] == fn) return;
  cray__entry **slot = &c->fns[c->fn_next++ % FN_CACHE];
  if (*slot) cray__store_release(c->store, *slot);
  cray__store_retain(fn);
  *slot = fn;
}

/* Builds the task of an M_TASK message (after its kind byte); sets *more when its
 * arguments' bytes come later. NULL when the message is malformed. */
static cray__task *read_task(cray__cluster *c, int source, rd *r, int *more) {
  cray_id id = get_id(r);
  uint32_t nreturns = get_u32(r);
  unsigned all_values = get_u8(r);
  uint32_t max_retries = get_u32(r);
  unsigned retry_exceptions = get_u8(r);
  unsigned placed = get_u8(r);
  uint64_t streaming = get_u64(r); /* its bound + 1, or 0: it does not stream */
  uint32_t namelen = get_u32(r);
  const uint8_t *name = namelen == UINT32_MAX ? NULL : get_bytes(r, namelen);
  uint32_t method = get_u32(r);
  uint32_t nres = get_u32(r);
  if (r->bad || nres > (size_t)(r->end - r->p) / 12) return NULL;
  cray__resource_need *need = cray__calloc((size_t)nres + 1, sizeof *need);
  if (!need) fatal(c, "out of memory for a task");
  for (uint32_t i = 0; i < nres; i++) {
    char *res = get_str(c, r);
    need[i].amount = get_f64(r);
    /* The submitter chose this rank, or it stole the task, for having them. */
    need[i].index = res && c->sched ? cray__sched_resource(c->sched, res, NULL) : -1;
    cray__free(res);
    if (need[i].index < 0) r->bad = 1;
  }
  cray_id fn_id = get_id(r);
  uint32_t ndeps = get_u32(r);
  if (r->bad || ndeps > (size_t)(r->end - r->p) / 20 || nreturns > CRAY__ID_MAX_INDEX ||
      (method != NOT_A_CALL && (!name || method > namelen))) {
    cray__free(need);
    return NULL;
  }
  char *cname = NULL;
  if (name) {
    if (!(cname = cray__malloc((size_t)namelen + 1))) fatal(c, "out of memory for a task");
    memcpy(cname, name, namelen);
    cname[namelen] = 0;
  }
  /* A call's function is its actor, here (NULL: gone; serve_task fails the call). */
  cray__entry *fn = method != NOT_A_CALL ? cray__store_lookup(c->store, &fn_id)
                                         : proxy(c, &fn_id, 0);
  if (method == NOT_A_CALL) cache_fn(c, fn);
  uint32_t fn_dep = method == NOT_A_CALL && cray__entry_state(fn) != CRAY__READY;
  cray__task *t = cray__task_new(nreturns, ndeps + fn_dep, (int)nres, cname);
  cray__free(cname);
  if (!t) fatal(c, "out of memory for a task");
  if (nres) memcpy(t->resources, need, nres * sizeof *need);
  cray__free(need);
  t->id = id;
  t->fn = fn;
  t->all_values = (int)all_values;
  t->max_retries = (int)max_retries;
  t->retry_exceptions = (int)retry_exceptions;
  t->placed = (int)placed;
  if (streaming) serve_stream(c, t, streaming - 1);
  if (method != NOT_A_CALL) {
    t->method = t->name + method;
    t->actor = fn ? cray__actor_of(fn) : NULL;
  }
  if (fn_dep) {
    cray__store_retain(fn);
    t->deps[0] = fn;
    t->dep_arg[0] = CRAY__DEP_FUNCTION;
  }
  for (uint32_t j = 0; j < ndeps; j++) {
    cray_id dep = get_id(r);
    t->deps[fn_dep + j] = proxy(c, &dep, 0);
    t->dep_arg[fn_dep + j] = get_u32(r);
  }
  for (uint32_t i = 0; i < nreturns; i++) {
    int made;
    cray_id ret = cray__id_with_index(id, i + 1);
    t->returns[i] = local_entry(c, &ret, &made);
  }
  *more = read_blob(c, source, r, &t->args);
  if (t->args) cray__store_count_bytes(c->store, (int64_t)t->args->len);
  if (r->bad) {
    cray__task_release(c->store, t);
    return NULL;
  }
  return t;
}

/* ---- actors on other ranks ----
 *
 * An actor lives on one rank and its entry's id names that rank, so a call through any
 * handle goes there. A handle nested in a value carries its ref with ACTOR_REF set in its
 * weight: the receiver makes an actor proxy (CRAY__ENTRY_REMOTE_ACTOR), which fetches
 * nothing, and the actor's rank holds the actor while weight is out, as for any object.
 * A call through a proxy is a task sent at once to the actor's rank (ship: its
 * arguments are waited for there, in the mailbox, so later calls never overtake it); its
 * results come back as a task's do. Making an actor on another rank (M_CREATE) is a
 * request the creating thread waits for; the reply (M_CREATED) carries the actor's id and
 * the weight of the creator's handle. cray.kill and cray.monitor are one message each;
 * a monitor's value comes back under the id of the creator's pending entry. */

/* Reads M_CREATE (after its kind byte) into m and returns its init call, built; sets
 * *more when its arguments' bytes come later. NULL when the message is malformed. */
static cray__task *read_create(cray__cluster *c, int source, rd *r, pmsg *m, int *more) {
  m->token = get_u64(r);
  m->spec.max_concurrency = (int)get_u32(r);
  m->spec.max_restarts = (int)get_u32(r);
  m->spec.max_task_retries = (int)get_u32(r);
  m->spec.max_pending_calls = (int)get_u32(r);
  m->spec.restart_on_error = (int)get_u32(r);
  uint32_t class_len = get_u32(r);
  const uint8_t *class_name = get_bytes(r, class_len);
  cray_id cls_id = get_id(r);
  uint64_t cls_weight = get_u64(r);
  cray_id init_id = get_id(r);
  uint32_t name_len = get_u32(r);
  const uint8_t *name = get_bytes(r, name_len);
  uint32_t method = get_u32(r), ndeps = get_u32(r);
  if (r->bad || method > name_len || ndeps > (size_t)(r->end - r->p) / 20) return NULL;
  char *cname = cray__malloc((size_t)class_len + 1), *iname = cray__malloc((size_t)name_len + 1);
  if (!cname || !iname) fatal(c, "out of memory for an actor");
  memcpy(cname, class_name, class_len);
  cname[class_len] = 0;
  memcpy(iname, name, name_len);
  iname[name_len] = 0;
  m->spec.class_name = cname;
  m->cls = proxy(c, &cls_id, 0);
  /* The class travels with weight, as a nested ref does: the actor's handles carry it on. */
  if (cray__id_owner(&cls_id) == c->rank) weight_home(c, source, &cls_id, cls_weight);
  else weight_of(c, &cls_id)->w += cls_weight;
  /* The class is init's dependency while it is on its way: nothing runs before it came. */
  uint32_t cls_dep = cray__entry_state(m->cls) != CRAY__READY;
  cray__task *t = cray__task_new(0, ndeps + cls_dep, 0, iname);
  cray__free(iname);
  if (!t) fatal(c, "out of memory for an actor");
  t->id = init_id;
  t->method = t->name + method;
  if (cls_dep) {
    cray__store_retain(m->cls);
    t->deps[0] = m->cls;
    t->dep_arg[0] = CRAY__DEP_FUNCTION;
  }
  for (uint32_t j = 0; j < ndeps; j++) {
    cray_id dep = get_id(r);
    t->deps[cls_dep + j] = proxy(c, &dep, 0);
    t->dep_arg[cls_dep + j] = get_u32(r);
    pull_now(c, t->deps[cls_dep + j]); /* its creator lets go of it at M_CREATED */
  }
  *more = read_blob(c, source, r, &t->args);
  if (t->args) cray__store_count_bytes(c->store, (int64_t)t->args->len);
  if (r->bad) {
    cray__task_release(c->store, t);
    return NULL;
  }
  return t;
}

/* M_CREATE complete: makes the actor here and tells its creator its id, with the weight
 * of the creator's handle. */
static void serve_create(cray__cluster *c, pmsg *m) {
  cray__entry *e = NULL;
  int made = 0;
  if (c->sched) made = cray__actor_create(c->sched, &m->spec, m->cls, m->task, &e) == CRAY__ACTOR_MADE;
  else cray__task_release(c->store, m->task);
  put_u8(&c->scratch, M_CREATED);
  put_u64(&c->scratch, m->token);
  put_u8(&c->scratch, (unsigned)made);
  if (made) {
    put_id(&c->scratch, &e->id);
    put_u64(&c->scratch, weight_out(c, e));
    cray__store_release(c->store, e);
  }
  send_ctrl(c, m->source);
  cray__store_release(c->store, m->cls);
  m->cls = NULL;
  cray__free((char *)m->spec.class_name);
  m->spec.class_name = NULL;
}

/* Ends the creating thread's wait for req. */
static void create_done(cray__cluster *c, areq *req, cray__entry *out) {
  cray__task_release(c->store, req->init);
  req->out = out;
  signal_done(c, &req->done);
}

/* I_CREATE: asks rank req->node to make the actor. */
static void send_create(cray__cluster *c, areq *req) {
  if (!c->rt) {
    create_done(c, req, NULL);
    return;
  }
  req->token = ++c->next_token;
  req->next = c->creates;
  c->creates = req;
  const cray__actor_spec *sp = req->spec;
  cray__task *t = req->init;
  cray__buf *m = &c->scratch;
  put_u8(m, M_CREATE);
  put_u64(m, req->token);
  put_u32(m, (uint32_t)sp->max_concurrency);
  put_u32(m, (uint32_t)sp->max_restarts);
  put_u32(m, (uint32_t)sp->max_task_retries);
  put_u32(m, (uint32_t)sp->max_pending_calls);
  put_u32(m, (uint32_t)sp->restart_on_error);
  size_t class_len = strlen(sp->class_name);
  put_u32(m, (uint32_t)class_len);
  cray__buf_write(m, sp->class_name, class_len);
  put_id(m, &req->cls->id);
  put_u64(m, weight_out(c, req->cls));
  put_id(m, &t->id);
  size_t name_len = strlen(t->name);
  put_u32(m, (uint32_t)name_len);
  cray__buf_write(m, t->name, name_len);
  put_u32(m, (uint32_t)(t->method - t->name));
  put_deps(m, t);
  put_blob(c, req->node, t->args);
  send_ctrl(c, req->node);
}

/* M_CREATED: the actor of a request is made (or not); its proxy here holds the weight. */
static void created(cray__cluster *c, int source, rd *r) {
  uint64_t token = get_u64(r);
  unsigned made = get_u8(r);
  cray_id id = made ? get_id(r) : (cray_id){0, 0};
  uint64_t w = made ? get_u64(r) : 0;
  areq **p = &c->creates;
  while (*p && (*p)->token != token) p = &(*p)->next;
  if (r->bad || !*p || (made && cray__id_owner(&id) != source)) protocol_error(c, source, "created");
  areq *req = *p;
  *p = req->next;
  cray__entry *e = NULL;
  if (made && c->rt) {
    int fresh;
    e = local_entry(c, &id, &fresh);
    if (fresh) e->actor = CRAY__ENTRY_REMOTE_ACTOR;
    weight_of(c, &id)->w += w;
  }
  create_done(c, req, e);
}

/* M_KILL (answered M_KILLED: whether the actor was alive) and M_MONITOR, for an actor of
 * this rank. */
static void serve_control(cray__cluster *c, int source, int kind, rd *r) {
  cray_id id = get_id(r), mon = kind == M_MONITOR ? get_id(r) : (cray_id){0, 0};
  uint64_t token = kind == M_KILL ? get_u64(r) : 0;
  unsigned flag = get_u8(r);
  if (r->bad) protocol_error(c, source, "actor control");
  cray__entry *e = c->rt && c->sched ? cray__store_lookup(c->store, &id) : NULL;
  cray__actor *a = e ? cray__actor_of(e) : NULL;
  if (kind == M_KILL) {
    int alive = a && cray__actor_kill(c->sched, a, (int)flag) == 0;
    put_u8(&c->scratch, M_KILLED);
    put_u64(&c->scratch, token);
    put_u8(&c->scratch, (unsigned)alive);
    send_ctrl(c, source);
  }
  if (kind == M_MONITOR) {
    cray__entry *m = a ? cray__actor_monitor(c->sched, a, (int)flag) : NULL;
    if (m) watch(c, m, M_MONITORED, source, &mon);
    else send_lost(c, source, M_MONITORED, &mon);
  }
  if (e) cray__store_release(c->store, e);
}

/* I_MONITOR: the message to the actor's rank. */
static void send_monitor(cray__cluster *c, intent *in) {
  put_u8(&c->scratch, M_MONITOR);
  put_id(&c->scratch, &in->id);
  put_id(&c->scratch, &in->entry->id);
  put_u8(&c->scratch, (unsigned)in->status);
  send_ctrl(c, cray__id_owner(&in->id));
}

/* ---- the directory of actor names (rank 0) ----
 *
 * Names live on rank 0 (DESIGN.md §9): one place decides who has a name, so a name is
 * taken once in the job, and no name service of its own is needed. A name maps to the ref
 * of a stored value, the actor's handle, which the creator puts (lua/actor.lua): holding
 * it holds the actor, as a name does in one process, and any rank that looks the name up
 * gets that ref with weight and reads the handle from it. A name is claimed before its
 * actor is made (CRAY__NAME_CLAIM), set once it is (CRAY__NAME_SET), and dropped when
 * the actor dies (cray__cluster_name_gone) or could not be made. */

static dname **dname_slot(cray__cluster *c, const char *name) {
  size_t h = 1469598103934665603u;
  for (const unsigned char *p = (const unsigned char *)name; *p; p++) h = (h ^ *p) * 1099511628211u;
  dname **p = &c->directory[h % NAME_BUCKETS];
  while (*p && strcmp((*p)->name, name) != 0) p = &(*p)->next;
  return p;
}

static void dname_drop(cray__cluster *c, dname **slot) {
  dname *d = *slot;
  *slot = d->next;
  if (d->ref) cray__store_release(c->store, d->ref);
  cray__free(d);
}

/* Rank 0: one request. *out is the ref found (one reference) or NULL. */
static int directory(cray__cluster *c, int op, const char *name, cray__entry *ref,
                     const cray_id *actor, cray__entry **out) {
  dname **slot = dname_slot(c, name), *d = *slot;
  *out = NULL;
  if (op == CRAY__NAME_LOOKUP || (op == CRAY__NAME_CLAIM && d)) {
    if (!d || !d->ref) return op == CRAY__NAME_LOOKUP ? CRAY__NAME_NONE : CRAY__NAME_BUSY;
    cray__store_retain(d->ref);
    *out = d->ref;
    return op == CRAY__NAME_LOOKUP ? CRAY__NAME_FOUND : CRAY__NAME_TAKEN;
  }
  if (op == CRAY__NAME_DROP) {
    int unset = !actor->hi && !actor->lo; /* the claimant could not make it */
    if (d && !d->ref && !unset) { /* its actor died before its name was set */
      d->dead = 1;
      d->actor = *actor;
    } else if (d && (d->ref ? cray__id_eq(&d->actor, actor) : unset)) {
      dname_drop(c, slot);
    }
    return CRAY__NAME_DONE;
  }
  if (!d) {
    size_t len = strlen(name) + 1;
    if (!(d = cray__calloc(1, sizeof *d + len))) fatal(c, "out of memory for a name");
    memcpy(d->name, name, len);
    *slot = d;
  }
  if (op == CRAY__NAME_SET) {
    if (d->dead && cray__id_eq(&d->actor, actor)) {
      dname_drop(c, slot);
      return CRAY__NAME_DONE;
    }
    if (d->ref) cray__store_release(c->store, d->ref);
    cray__store_retain(ref);
    d->ref = ref;
    d->actor = *actor;
    d->dead = 0;
    return CRAY__NAME_DONE;
  }
  return CRAY__NAME_MINE;
}

/* Rank 0: appends each name whose actor is made and alive to out, as its node (u32) and
 * the name, NUL-ended. */
static void directory_list(cray__cluster *c, cray__buf *out) {
  for (int i = 0; i < NAME_BUCKETS; i++)
    for (dname *d = c->directory[i]; d; d = d->next) {
      if (!d->ref || d->dead) continue;
      put_u32(out, (uint32_t)cray__id_owner(&d->actor));
      cray__buf_write(out, d->name, strlen(d->name) + 1);
    }
  if (out->failed) fatal(c, "out of memory for the names");
}

/* Writes a value whose one nested ref is e (NULL: no value), so that it travels with
 * weight. */
static void put_ref(cray__cluster *c, int dest, cray__entry *e) {
  cray__blob *b = e ? cray__blob_alloc(c->store, 0, 0, &e, 1, 0) : NULL;
  if (e && !b) fatal(c, "out of memory for a name");
  put_blob(c, dest, b);
  if (b) cray__blob_release(c->store, b);
}

/* Reads what put_ref wrote: the ref, with one reference, or NULL. */
static cray__entry *read_ref(cray__cluster *c, int source, rd *r) {
  cray__blob *b;
  if (read_blob(c, source, r, &b) || (b && b->nrefs != 1)) r->bad = 1;
  cray__entry *e = b && b->nrefs == 1 ? b->refs[0] : NULL;
  if (e) cray__store_retain(e);
  if (b) cray__blob_release(c->store, b);
  return e;
}

static void name_done(cray__cluster *c, nreq *req, int status, cray__entry *out) {
  if (req->ref) cray__store_release(c->store, req->ref);
  if (req->async) {
    if (out) cray__store_release(c->store, out);
    cray__free(req);
    return;
  }
  req->status = status;
  req->out = out;
  signal_done(c, &req->done);
}

/* I_NAME: answered here on rank 0, else asked of rank 0. */
static void send_name(cray__cluster *c, nreq *req) {
  if (!c->rt) {
    name_done(c, req, CRAY__NAME_CLOSED, NULL);
    return;
  }
  if (c->rank == 0 && req->op == CRAY__NAME_LIST) {
    directory_list(c, req->list);
    name_done(c, req, CRAY__NAME_DONE, NULL);
    return;
  }
  if (c->rank == 0) {
    cray__entry *out;
    int status = directory(c, req->op, req->name, req->ref, &req->actor, &out);
    name_done(c, req, status, out);
    return;
  }
  req->token = req->async ? 0 : ++c->next_token;
  size_t len = strlen(req->name);
  put_u8(&c->scratch, M_NAME);
  put_u8(&c->scratch, (unsigned)req->op);
  put_u64(&c->scratch, req->token);
  put_u32(&c->scratch, (uint32_t)len);
  cray__buf_write(&c->scratch, req->name, len);
  put_id(&c->scratch, &req->actor);
  put_ref(c, 0, req->ref);
  send_ctrl(c, 0);
  if (req->async) {
    name_done(c, req, CRAY__NAME_DONE, NULL);
    return;
  }
  req->next = c->names;
  c->names = req;
}

/* M_NAME, on rank 0. */
static void serve_name(cray__cluster *c, int source, rd *r) {
  unsigned op = get_u8(r);
  uint64_t token = get_u64(r);
  uint32_t len = get_u32(r);
  const uint8_t *bytes = get_bytes(r, len);
  cray_id actor = get_id(r);
  if (r->bad || op > CRAY__NAME_LIST || c->rank != 0) protocol_error(c, source, "name");
  cray__entry *ref = read_ref(c, source, r);
  char *name = cray__malloc((size_t)len + 1);
  if (!name) fatal(c, "out of memory for a name");
  memcpy(name, bytes, len);
  name[len] = 0;
  if (r->bad || memchr(name, 0, len) || (op == CRAY__NAME_SET && !ref))
    protocol_error(c, source, "name");
  cray__entry *out = NULL;
  cray__buf list;
  cray__buf_init(&list);
  int status = CRAY__NAME_DONE;
  if (op == CRAY__NAME_LIST) directory_list(c, &list);
  else status = directory(c, (int)op, name, ref, &actor, &out);
  cray__free(name);
  if (ref) cray__store_release(c->store, ref);
  if (token) {
    put_u8(&c->scratch, M_NAMED);
    put_u64(&c->scratch, token);
    put_u8(&c->scratch, (unsigned)status);
    put_ref(c, source, out);
    put_u32(&c->scratch, (uint32_t)list.len);
    if (list.len) cray__buf_write(&c->scratch, list.data, list.len);
    send_ctrl(c, source);
  }
  cray__buf_free(&list);
  if (out) cray__store_release(c->store, out);
}

/* M_NAMED: rank 0's answer to a request from here. */
static void named(cray__cluster *c, int source, rd *r) {
  uint64_t token = get_u64(r);
  unsigned status = get_u8(r);
  cray__entry *out = read_ref(c, source, r);
  uint32_t len = get_u32(r);
  const uint8_t *list = get_bytes(r, len);
  nreq **p = &c->names;
  while (*p && (*p)->token != token) p = &(*p)->next;
  if (r->bad || !*p || source != 0 || (len && !(*p)->list)) protocol_error(c, source, "named");
  nreq *req = *p;
  *p = req->next;
  if (len) cray__buf_write(req->list, list, len);
  if (req->list && req->list->failed) fatal(c, "out of memory for the names");
  name_done(c, req, (int)status, out);
}

/* I_KILL: asks the actor's rank to kill it (req->actor; req->op: restart instead); req
 * waits for the answer, M_KILLED, with whether it was alive. */
static void send_kill(cray__cluster *c, nreq *req) {
  if (!c->rt) {
    name_done(c, req, 0, NULL);
    return;
  }
  req->token = ++c->next_token;
  req->next = c->names;
  c->names = req;
  put_u8(&c->scratch, M_KILL);
  put_id(&c->scratch, &req->actor);
  put_u64(&c->scratch, req->token);
  put_u8(&c->scratch, (unsigned)req->op);
  send_ctrl(c, cray__id_owner(&req->actor));
}

/* M_KILLED: the answer to a kill asked from here. */
static void killed(cray__cluster *c, int source, rd *r) {
  uint64_t token = get_u64(r);
  unsigned alive = get_u8(r);
  nreq **p = &c->names;
  while (*p && (*p)->token != token) p = &(*p)->next;
  if (r->bad || !*p || cray__id_owner(&(*p)->actor) != source) protocol_error(c, source, "killed");
  nreq *req = *p;
  *p = req->next;
  name_done(c, req, (int)alive, NULL);
}

/* A message whose value is complete. */
static void deliver(cray__cluster *c, pmsg *m) {
  if (m->kind == M_ITEM) {
    item_arrived(c, m);
    return;
  }
  if (m->kind == M_TASK) {
    serve_task(c, m->task);
    return;
  }
  if (m->kind == M_CREATE) {
    serve_create(c, m);
    return;
  }
  cray__blob *b = m->blob;
  if (m->state == OBJ_LOST) {
    char hex[33];
    cray_id_format(&m->id, hex);
    b = cray__error_blob("object_lost", NULL, NULL,
                         "object %s is lost: rank %d, its owner, no longer has it", hex,
                         cray__id_owner(&m->id));
    if (!b) fatal(c, "out of memory for an error");
  }
  cray__entry *e = cray__store_lookup(c->store, &m->id);
  if (e && cray__entry_state(e) == CRAY__PENDING &&
      cray__store_resolve(c->store, e, b, m->state != OBJ_READY) == 0)
    b = NULL;
  if (b) cray__blob_release(c->store, b);
  if (e) cray__store_release(c->store, e);
  if (m->kind == M_MONITORED) return; /* a monitor is not work in flight: nothing counted it */
  if (m->kind == M_OBJECT) {
    int owner = cray__id_owner(&m->id);
    if (owner < c->size && c->asked[owner]) c->asked[owner]--;
    /* relaxed: a count, read as a hint */
    atomic_fetch_sub_explicit(&c->inflight, 1, memory_order_relaxed);
    return;
  }
  cray_id task_id = cray__id_with_index(m->id, 0);
  shadow **slot = shadow_slot(c, &task_id);
  if (*slot && --(*slot)->left == 0) shadow_done(c, slot);
}

static void handle_ctrl(cray__cluster *c, int source, const uint8_t *buf, size_t len) {
  rd r = {buf, buf + len, 0};
  pmsg m = {.kind = (int)get_u8(&r), .source = source};
  if (m.kind == M_RETURN) {
    uint32_t n = get_u32(&r);
    if (r.bad || n > (size_t)(r.end - r.p) / 24) protocol_error(c, source, "return");
    for (uint32_t i = 0; i < n && c->rt; i++) {
      cray_id id = get_id(&r);
      weight_home(c, source, &id, get_u64(&r));
    }
    return;
  }
  if (m.kind == M_TAKEN) {
    cray_id id = get_id(&r);
    if (r.bad) protocol_error(c, source, "taken");
    shadow **slot = shadow_slot(c, &id);
    if (*slot && (*slot)->left == 0) shadow_done(c, slot);
    return;
  }
  if (m.kind == M_CANCEL) {
    cray_id id = get_id(&r);
    if (r.bad) protocol_error(c, source, "cancel");
    if (c->rt) cancel_task(c, &id);
    return;
  }
  if (m.kind == M_TOOK) {
    if (c->rt) took(c, source, &r);
    return;
  }
  if (m.kind == M_STEAL) {
    give_work(c, source);
    return;
  }
  if (m.kind == M_QUERY) {
    uint32_t seq = get_u32(&r);
    unsigned op = get_u8(&r);
    if (r.bad || op > CRAY__QUERY_TRACE_READ) protocol_error(c, source, "query");
    answer_query(c, source, seq, (int)op);
    return;
  }
  if (m.kind == M_REPORT) {
    take_report(c, source, &r);
    return;
  }
  if (m.kind == M_STOLEN) {
    uint32_t n = get_u32(&r);
    if (r.bad) protocol_error(c, source, "stolen");
    stolen(c, n);
    return;
  }
  if (m.kind == M_EXIT || m.kind == M_ACK) {
    uint32_t status = m.kind == M_EXIT ? get_u32(&r) : 0;
    pthread_mutex_lock(&c->mu);
    if (m.kind == M_EXIT) c->exit_seen = 1, c->exit_status = (int)status;
    else c->acks++;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return;
  }
  if (m.kind == M_TASK && c->rt) {
    int more = 0;
    if (!(m.task = read_task(c, source, &r, &more))) protocol_error(c, source, "task");
    m.blob = m.task->args;
    m.waiting = more;
  } else if (m.kind == M_CREATE && c->rt) {
    int more = 0;
    if (!(m.task = read_create(c, source, &r, &m, &more))) protocol_error(c, source, "create");
    m.blob = m.task->args;
    m.waiting = more;
  } else if (m.kind == M_TASK) {
    return; /* this rank's runtime has closed: the job is ending */
  } else if (m.kind == M_CREATE) {
    put_u8(&c->scratch, M_CREATED); /* this rank's runtime has closed: none is made */
    put_u64(&c->scratch, get_u64(&r));
    put_u8(&c->scratch, 0);
    send_ctrl(c, source);
    return;
  } else if (m.kind == M_CREATED) {
    if (c->rt) created(c, source, &r); /* else its request failed when the runtime closed */
    return;
  } else if (m.kind == M_KILLED) {
    if (c->rt) killed(c, source, &r); /* as M_CREATED */
    return;
  } else if (m.kind == M_KILL || m.kind == M_MONITOR) {
    serve_control(c, source, m.kind, &r);
    return;
  } else if (m.kind == M_NAME) {
    if (c->rt) serve_name(c, source, &r);
    return;
  } else if (m.kind == M_NAMED) {
    if (c->rt) named(c, source, &r); /* as M_CREATED */
    return;
  } else if (m.kind == M_FETCH) {
    m.id = get_id(&r);
    if (r.bad) protocol_error(c, source, "fetch");
    cray__entry *e = c->rt ? cray__store_lookup(c->store, &m.id) : NULL;
    if (!e) send_lost(c, source, M_OBJECT, &m.id);
    else if (cray__entry_state(e) == CRAY__PENDING) watch(c, e, M_OBJECT, source, &m.id);
    else send_entry(c, source, M_OBJECT, e, &m.id), cray__store_release(c->store, e);
    return;
  } else if (m.kind == M_RESULT || m.kind == M_OBJECT || m.kind == M_ITEM ||
             m.kind == M_MONITORED) {
    m.id = get_id(&r);
    m.state = (int)get_u8(&r);
    if (!c->rt) return;
    m.waiting = read_blob(c, source, &r, &m.blob);
    if (r.bad || m.state > OBJ_LOST || (m.state != OBJ_LOST && !m.blob))
      protocol_error(c, source, "value");
  } else {
    protocol_error(c, source, "unknown kind");
  }
  if (!m.waiting && !c->in_head[source]) {
    deliver(c, &m);
    return;
  }
  pmsg *q = cray__malloc(sizeof *q);
  if (!q) fatal(c, "out of memory for a value");
  *q = m;
  if (c->in_tail[source]) c->in_tail[source]->next = q;
  else c->in_head[source] = q;
  c->in_tail[source] = q;
}

/* A chunk of the oldest value still arriving from source. */
static void handle_data(cray__cluster *c, int source, size_t len) {
  pmsg *m = c->in_head[source];
  if (!m) { /* its runtime has closed: the bytes have nowhere to go */
    uint8_t *tmp = cray__malloc(len ? len : 1);
    if (!tmp || c->tp->recv(source, TAG_DATA, tmp, len) != 0) fatal(c, "receive");
    cray__free(tmp);
    return;
  }
  if (len > m->blob->len - m->off) protocol_error(c, source, "chunk past its value");
  if (c->tp->recv(source, TAG_DATA, m->blob->data + m->off, len) != 0) fatal(c, "receive");
  m->off += len;
  if (m->off < m->blob->len) return;
  for (;;) { /* it, and the complete messages that came behind it */
    if (!(c->in_head[source] = m->next)) c->in_tail[source] = NULL;
    deliver(c, m);
    cray__free(m);
    if (!(m = c->in_head[source]) || m->waiting) return;
  }
}

static int receive(cray__cluster *c) {
  int did = 0;
  for (int k = 0; k < 64; k++) {
    int source, tag;
    size_t len;
    int got = c->tp->probe(-1, -1, &source, &tag, &len);
    if (got < 0) fatal(c, "receive");
    if (!got) break;
    did = 1;
    if (source < 0 || source >= c->size) protocol_error(c, source, "unknown rank");
    if (tag == TAG_DATA) {
      handle_data(c, source, len);
      continue;
    }
    c->recvbuf.len = 0;
    uint8_t *buf = cray__buf_reserve(&c->recvbuf, len ? len : 1);
    if (!buf) fatal(c, "out of memory for a message");
    if (c->tp->recv(source, tag, buf, len) != 0) fatal(c, "receive");
    handle_ctrl(c, source, buf, len);
  }
  return did;
}

/* ---- the communication thread ---- */

/* Waits for every send to complete (their receivers keep receiving until the job ends). */
static void drain_sends(cray__cluster *c) {
  while (c->nsends || post_chunks(c)) {
    test_sends(c);
    receive(c);
    sched_yield();
  }
}

static void handle_intent(cray__cluster *c, intent *in);

/* ---- a rank that died ---- */

/* Whether process pid is gone (or a zombie its launcher has not reaped yet). */
static int pid_gone(int pid) {
  if (kill(pid, 0) != 0) return errno == ESRCH;
  char path[64], stat[256];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return 1;
  size_t n = fread(stat, 1, sizeof stat - 1, f);
  fclose(f);
  stat[n] = 0;
  const char *paren = strrchr(stat, ')'); /* "pid (name) state ..." */
  return paren && paren[1] == ' ' && paren[2] == 'Z';
}

/* Appends printf-style text to out, with "; " before it when out holds some already. */
static void say(cray__buf *out, const char *fmt, ...) {
  char text[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (out->len) cray__buf_write(out, "; ", 2);
  cray__buf_write(out, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
}

static const char *plural(unsigned n) { return n == 1 ? "" : "s"; }

/* Appends to out what is in flight between this rank and rank k (nothing when none). */
static void in_flight_with(cray__cluster *c, int k, cray__buf *out) {
  unsigned tasks = 0, waiting = 0, results = 0, values = 0, arriving = 0;
  const char *names[3] = {"", "", ""};
  for (int i = 0; i < SHADOW_BUCKETS; i++)
    for (shadow *sh = c->shadows[i]; sh; sh = sh->next) {
      if (sh->dest != k) continue;
      if (!sh->shipped) {
        waiting++;
        continue;
      }
      if (tasks < 3) names[tasks] = sh->task->name ? sh->task->name : "?";
      tasks++;
    }
  for (intent *w = c->watches; w; w = w->wnext) { /* a monitor's is not work in flight */
    if (w->rank != k || w->msg == M_MONITORED) continue;
    if (w->msg == M_RESULT) results++;
    else values++;
  }
  for (pmsg *m = c->in_head[k]; m; m = m->next) arriving++;
  if (tasks) {
    cray__buf list;
    cray__buf_init(&list);
    for (unsigned i = 0; i < tasks && i < 3; i++) say(&list, "'%s'", names[i]);
    if (tasks > 3) say(&list, "...");
    say(out, "%u task%s sent to it (%.*s)", tasks, plural(tasks), (int)list.len,
        list.len ? (const char *)list.data : "");
    cray__buf_free(&list);
  }
  if (waiting) say(out, "%u task%s waiting here to be sent to it", waiting, plural(waiting));
  if (results) say(out, "%u task%s of its running here", results, plural(results));
  if (values) say(out, "%u value%s it asked of this rank", values, plural(values));
  if (c->asked[k]) say(out, "%u value%s asked of it", c->asked[k], plural(c->asked[k]));
  if (arriving) say(out, "%u value%s arriving from it", arriving, plural(arriving));
}

/* Says what is in flight with rank k (k < 0: with each rank), on one line. */
static void say_in_flight(cray__cluster *c, int k) {
  cray__buf line, part;
  cray__buf_init(&line);
  cray__buf_init(&part);
  for (int r = 0; r < c->size; r++) {
    if (r == c->rank || (k >= 0 && r != k)) continue;
    part.len = 0;
    in_flight_with(c, r, &part);
    if (part.len) say(&line, "with rank %d: %.*s", r, (int)part.len, (const char *)part.data);
  }
  const char *what = line.len ? (const char *)line.data : "";
  if (k < 0)
    fprintf(stderr, "crayrun: rank %d of %d: told to stop (as mpirun does when a rank dies); %s%.*s\n",
            c->rank, c->size, line.len ? "in flight " : "nothing in flight", (int)line.len, what);
  else
    fprintf(stderr, "crayrun: rank %d of %d: rank %d (pid %d on %s) has died; %s%.*s; ending the job\n",
            c->rank, c->size, k, c->nodes[k].pid, c->nodes[k].host,
            line.len ? "in flight " : "nothing was in flight with it", (int)line.len, what);
  cray__buf_free(&part);
  cray__buf_free(&line);
}

/* Looks for a rank on this host whose process is gone; names it, with what was in flight,
 * and ends the job: rank 0 at once, the others DYING_GRACE later, so that rank 0, whose
 * script the job runs, says what it had in flight before MPI stops it. Returns 0 when
 * every rank here lives. */
static int check_peers(cray__cluster *c) {
  if (c->dying > 0) {
    if (cray__now() >= c->dying) c->tp->abort(1);
    return 1;
  }
  /* exit_seen is written on this thread only (under mu, for the threads that wait on it) */
  if (!c->nodes || c->exit_seen) return 0; /* the job is ending: ranks leave one by one */
  for (int k = 0; k < c->size; k++) {
    const cray__cluster_node *n = &c->nodes[k];
    if (k == c->rank || strcmp(n->host, c->nodes[c->rank].host) != 0 || !pid_gone(n->pid)) continue;
    say_in_flight(c, k);
    if (c->rank == 0) c->tp->abort(1);
    c->dying = cray__now() + DYING_GRACE;
    return 1;
  }
  return 0;
}

/* The runtime closes: nothing here may touch its store afterwards. */
static void detach_now(cray__cluster *c) {
  c->rt = NULL;
  while (c->queries) {
    query *q = c->queries;
    c->queries = q->next;
    query_finish(c, q, 1);
  }
  for (intent *w = c->watches; w; w = w->wnext) cray__store_unsubscribe(c->store, w->entry, &w->node);
  for (int i = 0; i < SHADOW_BUCKETS; i++)
    for (shadow *sh = c->shadows[i]; sh; sh = sh->next)
      for (uint32_t d = 0; d < sh->task->ndeps; d++)
        cray__store_unsubscribe(c->store, sh->task->deps[d], &sh->task->dep_nodes[d]);
  /* What fired before is in the queue now; nothing more will be pushed for them. */
  intent *in;
  while ((in = pop(c))) handle_intent(c, in);
  while (c->watches) unwatch(c, c->watches);
  while (c->streams) { /* a producer paused for its consumer goes on */
    served *sv = c->streams;
    c->streams = sv->next;
    cray__stream_abandon(sv->st);
    cray__stream_release(sv->st);
    cray__free(sv);
  }
  while (c->creates) {
    areq *req = c->creates;
    c->creates = req->next;
    create_done(c, req, NULL);
  }
  while (c->names) {
    nreq *req = c->names;
    c->names = req->next;
    name_done(c, req, CRAY__NAME_CLOSED, NULL);
  }
  for (int i = 0; i < NAME_BUCKETS; i++)
    while (c->directory[i]) dname_drop(c, &c->directory[i]);
  for (int i = 0; i < SHADOW_BUCKETS; i++) {
    while (c->shadows[i]) {
      if (c->shadows[i]->task->exec) cray__free(c->shadows[i]->task->exec);
      c->shadows[i]->task->exec = NULL;
      shadow_done(c, &c->shadows[i]);
    }
  }
  drain_sends(c);
  for (int s = 0; s < c->size; s++) {
    while (c->in_head[s]) {
      pmsg *m = c->in_head[s];
      c->in_head[s] = m->next;
      if (m->task) cray__task_release(c->store, m->task);
      else if (m->blob) cray__blob_release(c->store, m->blob);
      if (m->cls) cray__store_release(c->store, m->cls);
      cray__free((char *)m->spec.class_name);
      cray__free(m);
    }
    c->in_tail[s] = NULL;
  }
  for (unsigned i = 0; i < FN_CACHE; i++) {
    if (c->fns[i]) cray__store_release(c->store, c->fns[i]);
    c->fns[i] = NULL;
  }
  for (int i = 0; i < WEIGHT_BUCKETS; i++)
    while (c->weights[i]) weight_drop(c, &c->weights[i]);
  c->store = NULL;
  c->sched = NULL;
}

static void handle_intent(cray__cluster *c, intent *in) {
  switch (in->kind) {
    case I_SUBMIT:
      if (c->rt) {
        shadow_add(c, in);
        return;
      }
      break;
    case I_SHIP:
      ship(c, in);
      return;
    case I_SEND:
      if (c->rt) send_entry(c, in->rank, in->msg, in->entry, &in->id);
      if (c->rt && in->msg == M_RESULT && c->streams) served_end(c, &in->id);
      unwatch(c, in);
      return;
    case I_ITEM:
      if (c->rt) send_entry(c, in->rank, M_ITEM, in->entry, &in->id);
      cray__store_release(c->store, in->entry);
      break;
    case I_TOOK:
      if (c->rt) send_took(c, in);
      break;
    case I_ATTACH:
      c->rt = in->ptr;
      c->store = c->rt->store;
      break;
    case I_READY: {
      c->sched = in->ptr;
      /* Its runtime is attached (that intent came first): once every rank is here, none
       * is sent work it cannot take. */
      exchange_nodes(c);
      if (c->tp->barrier() != 0) fatal(c, "barrier");
      signal_done(c, &c->ready_done);
      break;
    }
    case I_DETACH:
      detach_now(c);
      signal_done(c, &c->detach_done);
      break;
    case I_EXIT:
      for (int r = 1; r < c->size; r++) {
        put_u8(&c->scratch, M_EXIT);
        put_u32(&c->scratch, (uint32_t)in->status);
        send_ctrl(c, r);
      }
      break;
    case I_ACK:
      put_u8(&c->scratch, M_ACK);
      send_ctrl(c, 0);
      break;
    case I_STOP:
      c->stop = 1;
      break;
    case I_GONE:
      if (c->rt) gone(c, &in->id);
      break;
    case I_CANCEL:
      if (c->rt) cancel_task(c, &in->id);
      break;
    case I_CREATE:
      send_create(c, in->ptr);
      break;
    case I_KILL:
      send_kill(c, in->ptr);
      break;
    case I_NAME:
      send_name(c, in->ptr);
      break;
    case I_MONITOR:
      if (c->rt) send_monitor(c, in);
      cray__store_release(c->store, in->entry);
      break;
    case I_QUERY:
      query_start(c, in->ptr);
      break;
    case I_CHECK:
      if (!check_peers(c)) say_in_flight(c, -1);
      break;
    case I_PULL:
      pull(c, &in->id);
      break;
  }
  cray__free(in);
}

/* Nothing to do this round, none for `quiet` seconds: yield, or sleep until woken or a
 * share of `quiet` passes (see the top of the file). */
static void idle(cray__cluster *c, double quiet) {
  if (quiet < IDLE_SPIN) {
    sched_yield();
    return;
  }
  double wait = quiet * IDLE_SHARE < IDLE_MAX ? quiet * IDLE_SHARE : IDLE_MAX;
  /* seq_cst: pairs with the pusher's load of `sleeping` after its push */
  atomic_store_explicit(&c->sleeping, 1, memory_order_seq_cst);
  if (queue_empty(c)) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long ns = ts.tv_nsec + (long)(wait * 1e9);
    ts.tv_sec += ns / 1000000000;
    ts.tv_nsec = ns % 1000000000;
    while (sem_timedwait(&c->sem, &ts) != 0 && errno == EINTR) continue;
  }
  /* relaxed: a stale 1 costs a pusher one needless post */
  atomic_store_explicit(&c->sleeping, 0, memory_order_relaxed);
}

static int setup(cray__cluster *c) {
  if (c->tp->init(&c->rank, &c->size, c->err, sizeof c->err) != 0) return -1;
  uint64_t nonce = 0;
  if (c->rank == 0 && getrandom(&nonce, sizeof nonce, 0) != (ssize_t)sizeof nonce)
    nonce = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull;
  if (c->tp->bcast(&nonce, sizeof nonce, 0) != 0) {
    snprintf(c->err, sizeof c->err, "%s", c->tp->error());
    return -1;
  }
  c->nonce = nonce & ((UINT64_C(1) << (64 - CRAY__ID_RANK_BITS)) - 1);
  size_t n = (size_t)c->size;
  c->out_head = cray__calloc(n, sizeof *c->out_head);
  c->out_tail = cray__calloc(n, sizeof *c->out_tail);
  c->chunks_out = cray__calloc(n, sizeof *c->chunks_out);
  c->in_head = cray__calloc(n, sizeof *c->in_head);
  c->in_tail = cray__calloc(n, sizeof *c->in_tail);
  c->returns = cray__calloc(n, sizeof *c->returns);
  c->nreturns = cray__calloc(n, sizeof *c->nreturns);
  c->asked = cray__calloc(n, sizeof *c->asked);
  if (!c->out_head || !c->out_tail || !c->chunks_out || !c->in_head || !c->in_tail ||
      !c->returns || !c->nreturns || !c->asked) {
    snprintf(c->err, sizeof c->err, "out of memory");
    return -1;
  }
  return 0;
}

static void *comm_main(void *arg) {
  cray__cluster *c = arg;
  int rc = setup(c);
  pthread_mutex_lock(&c->mu);
  c->started = 1;
  c->start_rc = rc;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  if (rc) return NULL;
  double last = cray__now(); /* the end of the last round that did something */
  while (!c->stop) {
    int did = 0;
    intent *in;
    for (int k = 0; k < 256 && !c->stop && (in = pop(c)); k++) {
      handle_intent(c, in);
      did = 1;
    }
    flush_returns(c);
    did |= test_sends(c);
    did |= post_chunks(c);
    did |= receive(c);
    maybe_steal(c);
    if ((c->dying > 0 || c->rt) && cray__now() >= c->next_check) {
      check_peers(c);
      c->next_check = cray__now() + PEER_CHECK;
    }
    double now = cray__now();
    if (did) last = now;
    else idle(c, now - last);
  }
  drain_sends(c);
  c->tp->finalize();
  cray__thread_done();
  return NULL;
}

/* ---- the other threads' side ---- */

static void wait_flag(cray__cluster *c, int *flag) {
  pthread_mutex_lock(&c->mu);
  while (!*flag) pthread_cond_wait(&c->cv, &c->mu);
  *flag = 0;
  pthread_mutex_unlock(&c->mu);
}

static void free_cluster(cray__cluster *c) {
  cray__free(c->out_head);
  cray__free(c->out_tail);
  cray__free(c->chunks_out);
  cray__free(c->in_head);
  cray__free(c->in_tail);
  cray__free(c->sends);
  for (int r = 0; c->returns && r < c->size; r++) cray__buf_free(&c->returns[r]);
  cray__free(c->returns);
  cray__free(c->nreturns);
  cray__free(c->asked);
  free_nodes(c);
  cray__buf_free(&c->scratch);
  cray__buf_free(&c->recvbuf);
  sem_destroy(&c->sem);
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->cv);
  cray__free(c);
}

int cray__cluster_start(cray__cluster **out, const cray_transport *tp, char *err, size_t errlen) {
  if (tp->version != CRAY_TRANSPORT_VERSION) {
    snprintf(err, errlen, "the transport is version %d, this runtime wants %d", tp->version,
             CRAY_TRANSPORT_VERSION);
    return -1;
  }
  cray__cluster *c = cray__calloc(1, sizeof *c);
  if (!c) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  c->tp = tp;
  atomic_init(&c->head, &c->stub);
  c->tail = &c->stub;
  atomic_init(&c->stub.next, NULL);
  sem_init(&c->sem, 0, 0);
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  cray__buf_init(&c->scratch);
  cray__buf_init(&c->recvbuf);
  if (pthread_create(&c->thread, NULL, comm_main, c) != 0) {
    snprintf(err, errlen, "cannot start the communication thread");
    free_cluster(c);
    return -1;
  }
  pthread_mutex_lock(&c->mu);
  while (!c->started) pthread_cond_wait(&c->cv, &c->mu);
  pthread_mutex_unlock(&c->mu);
  if (c->start_rc) {
    snprintf(err, errlen, "%s", c->err);
    pthread_join(c->thread, NULL);
    free_cluster(c);
    return -1;
  }
  process_cluster = c;
  *out = c;
  return 0;
}

void cray__cluster_attach(cray__cluster *c, cray_runtime *rt) {
  cray__store_on_remote_gone(rt->store, remote_gone, c);
  cray__store_on_remote_wanted(rt->store, remote_wanted, c);
  intent *in = intent_new(c, I_ATTACH);
  in->ptr = rt;
  pthread_mutex_lock(&c->mu);
  c->attached = 1;
  push(c, in);
  pthread_mutex_unlock(&c->mu);
}

void cray__cluster_ready(cray__cluster *c, cray__sched *s) {
  intent *in = intent_new(c, I_READY);
  in->ptr = s;
  push(c, in);
  wait_flag(c, &c->ready_done);
}

void cray__cluster_detach(cray__cluster *c) {
  intent *in = intent_new(c, I_DETACH);
  pthread_mutex_lock(&c->mu);
  c->attached = 0;
  push(c, in);
  pthread_mutex_unlock(&c->mu);
  wait_flag(c, &c->detach_done);
}

void cray__cluster_signalled(cray__cluster *c) { push(c, intent_new(c, I_CHECK)); }

int cray__cluster_serve(cray__cluster *c) {
  pthread_mutex_lock(&c->mu);
  while (!c->exit_seen) pthread_cond_wait(&c->cv, &c->mu);
  int status = c->exit_status;
  pthread_mutex_unlock(&c->mu);
  return status;
}

void cray__cluster_end(cray__cluster *c, int status) {
  if (c->rank == 0) {
    intent *in = intent_new(c, I_EXIT);
    in->status = status;
    push(c, in);
    pthread_mutex_lock(&c->mu);
    while (c->acks < c->size - 1) pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
  } else {
    push(c, intent_new(c, I_ACK));
  }
  push(c, intent_new(c, I_STOP));
  pthread_join(c->thread, NULL);
  process_cluster = NULL;
  free_cluster(c);
}

/* ---- actors on other ranks: the other threads' side ---- */

cray__entry *cray__cluster_actor_create(cray__cluster *c, cray__store *s,
                                        const cray__actor_spec *spec, cray__entry *cls,
                                        cray__task *init, int node) {
  areq req = {.node = node, .spec = spec, .cls = cls, .init = init};
  pthread_mutex_lock(&c->mu);
  int attached = c->attached;
  if (attached) {
    intent *in = intent_new(c, I_CREATE);
    in->ptr = &req;
    push(c, in);
    while (!req.done) pthread_cond_wait(&c->cv, &c->mu);
  }
  pthread_mutex_unlock(&c->mu);
  if (!attached) cray__task_release(s, init);
  return req.out;
}


cray__entry *cray__cluster_actor_monitor(cray__cluster *c, cray_runtime *rt, cray__entry *actor,
                                         int restarts) {
  cray__entry *m = cray__store_insert(rt->store, cray__id_new(&rt->ids), NULL);
  if (!m) return NULL;
  pthread_mutex_lock(&c->mu);
  if (c->attached) {
    intent *in = intent_new(c, I_MONITOR);
    in->id = actor->id;
    in->status = restarts;
    in->entry = m;
    cray__store_retain(m);
    /* Not counted in flight: an actor may live for ever, and a driver that waits for
     * something else meanwhile must still be told when nothing can make progress. */
    push(c, in);
  }
  pthread_mutex_unlock(&c->mu);
  return m;
}

/* Hands req to the communication thread as an intent of kind (I_NAME or I_KILL) and
 * waits for its answer unless it is async; returns 0 when the runtime is shut down. */
static int push_request(cray__cluster *c, int kind, nreq *req) {
  intent *in = intent_new(c, kind);
  in->ptr = req;
  int wait = !req->async; /* an async one may be freed as soon as it is pushed */
  pthread_mutex_lock(&c->mu);
  int attached = c->attached;
  if (attached) push(c, in);
  while (attached && wait && !req->done) pthread_cond_wait(&c->cv, &c->mu);
  pthread_mutex_unlock(&c->mu);
  if (!attached) cray__free(in);
  return attached;
}

static nreq *name_new(cray__cluster *c, int op, const char *name, const cray_id *actor) {
  size_t len = strlen(name) + 1;
  nreq *req = cray__calloc(1, sizeof *req + len);
  if (!req) {
    fprintf(stderr, "crayrun: rank %d: out of memory for a name; ending the job\n", c->rank);
    c->tp->abort(1);
  }
  req->op = op;
  memcpy(req->name, name, len);
  if (actor) req->actor = *actor;
  return req;
}

int cray__cluster_name(cray__cluster *c, cray__store *s, int op, const char *name,
                       cray__entry *ref, const cray_id *actor, cray__entry **out) {
  nreq *req = name_new(c, op, name, actor);
  req->ref = ref;
  if (ref) cray__store_retain(ref);
  int status = CRAY__NAME_CLOSED;
  *out = NULL;
  if (push_request(c, I_NAME, req)) {
    status = req->status;
    *out = req->out;
  } else if (ref) {
    cray__store_release(s, ref);
  }
  cray__free(req);
  return status;
}

int cray__cluster_actor_kill(cray__cluster *c, cray__entry *actor, int restart) {
  nreq *req = name_new(c, restart, "", &actor->id);
  int alive = push_request(c, I_KILL, req) && req->status == 1;
  cray__free(req);
  return alive;
}

int cray__cluster_names(cray__cluster *c, cray__buf *out) {
  nreq *req = name_new(c, CRAY__NAME_LIST, "", NULL);
  req->list = out;
  int ok = push_request(c, I_NAME, req) && req->status == CRAY__NAME_DONE;
  cray__free(req);
  return ok ? 0 : -1;
}

void cray__cluster_name_gone(cray__cluster *c, const char *name, const cray_id *actor) {
  nreq *req = name_new(c, CRAY__NAME_DROP, name, actor);
  req->async = 1;
  if (!push_request(c, I_NAME, req)) cray__free(req);
}
