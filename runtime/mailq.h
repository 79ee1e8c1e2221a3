/*
 * mailq.h: an actor's mailbox queue: intrusive, first in first out, many producers and
 * one consumer, that says when the actor was idle.
 *
 * The design is Vyukov's non-intrusive-stub queue: a singly linked list from `tail` (the
 * consumer's end) to `head` (the producers'), with a stub node of the queue's own that
 * stands in whenever the list would be empty, so producers never see NULL.
 *
 * Contract:
 * - push (any thread, no lock): the node's link is cleared, `head` is swapped for the node
 *   (one exchange: cray__mailq_swap), then the node is linked after the one it replaced
 *   (cray__mailq_link). Between the two a
 *   pushed node is in the queue but not yet reachable: pop may return NULL while a push
 *   is under way ("busy"), and the consumer must come back for it.
 * - pop, peek and mark_idle are the consumer's: one thread at a time, which the user of
 *   the queue chooses (for an actor, see runtime/actor.c, "the mailbox"). pop returns the
 *   oldest node that is reachable, or NULL.
 * - The idle mark is the low bit of `head`. mark_idle sets it only when the queue is
 *   empty and no push is under way (`head` is the stub, which the consumer has made its
 *   tail), and succeeds as well when the mark is there already. The push whose exchange
 *   takes the mark off learns so (it returns 1): exactly one producer learns of each
 *   mark, and it is the one that must make the queue's owner come (list the actor).
 * - Nodes pushed by one thread are popped in the order it pushed them.
 * - A node belongs to the queue from its push until pop returns it; the stub never leaves.
 */
#ifndef CRAY_MAILQ_H
#define CRAY_MAILQ_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct cray__mailq_node cray__mailq_node;
struct cray__mailq_node {
  _Atomic(cray__mailq_node *) next;
};

/* `head` is the producers' and `tail` the consumer's: `head` is on a cache line of its
 * own however the queue is aligned (a line is 64 bytes), so that a pop does not take
 * from the producers the line they swap, nor a push from the consumer the line it pops
 * from, and what comes before the queue is not on the line the producers swap. */
typedef struct cray__mailq {
  char before_head[64 - sizeof(uintptr_t)];
  _Atomic(uintptr_t) head;  /* the newest node, | 1 when idle; producers swap it */
  char after_head[64 - sizeof(uintptr_t)];
  cray__mailq_node *tail;   /* the oldest node not popped, or the stub; the consumer's */
  cray__mailq_node stub;
} cray__mailq;

#define CRAY__MAILQ_IDLE ((uintptr_t)1)

/* An empty queue, marked idle or not. */
static inline void cray__mailq_init(cray__mailq *q, int idle) {
  atomic_init(&q->stub.next, NULL);
  q->tail = &q->stub;
  atomic_init(&q->head, (uintptr_t)&q->stub | (idle ? CRAY__MAILQ_IDLE : 0));
}

/* The first half of a push: n becomes the newest node, not yet reachable. Returns what
 * cray__mailq_link needs, whose CRAY__MAILQ_IDLE bit says whether this took the mark off.
 * Between the two halves n cannot be popped, so its pusher may still act for it (an
 * actor's sender takes a reference to the actor there, before the call may run). */
static inline uintptr_t cray__mailq_swap(cray__mailq *q, cray__mailq_node *n) {
  /* relaxed: the release store that links n publishes this with it */
  atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
  /* acq_rel: ordered after the push that came before (whose node this links to), and the
   * mark's taker sees what the consumer did before setting it */
  return atomic_exchange_explicit(&q->head, (uintptr_t)n, memory_order_acq_rel);
}

/* The second half: links n after `prev` (cray__mailq_swap's result), making it poppable. */
static inline void cray__mailq_link(uintptr_t prev, cray__mailq_node *n) {
  cray__mailq_node *p = (cray__mailq_node *)(prev & ~CRAY__MAILQ_IDLE);
  /* release: the consumer that reads the link (acquire) sees n whole */
  atomic_store_explicit(&p->next, n, memory_order_release);
}

/* Pushes n: 1 when that took the idle mark off, else 0. */
static inline int cray__mailq_push(cray__mailq *q, cray__mailq_node *n) {
  uintptr_t prev = cray__mailq_swap(q, n);
  cray__mailq_link(prev, n);
  return (int)(prev & CRAY__MAILQ_IDLE);
}

/* The oldest reachable node, taken off the queue, or NULL (empty, or a push is busy). */
static inline cray__mailq_node *cray__mailq_pop(cray__mailq *q) {
  cray__mailq_node *tail = q->tail;
  /* acquire: pairs with push's release link, so the node is seen whole */
  cray__mailq_node *next = atomic_load_explicit(&tail->next, memory_order_acquire);
  if (tail == &q->stub) {
    if (!next) return NULL;
    q->tail = tail = next;
    next = atomic_load_explicit(&tail->next, memory_order_acquire); /* as above */
  }
  if (next) {
    q->tail = next;
    return tail;
  }
  /* tail is the last reachable node: put the stub behind it, so it can leave. */
  /* relaxed: only compared; a push under way shows as a head other than tail */
  if ((cray__mailq_node *)(atomic_load_explicit(&q->head, memory_order_relaxed) &
                           ~CRAY__MAILQ_IDLE) != tail)
    return NULL;
  cray__mailq_push(q, &q->stub);
  next = atomic_load_explicit(&tail->next, memory_order_acquire); /* as above */
  if (!next) return NULL;
  q->tail = next;
  return tail;
}

/* Whether pop would return a node now (a busy push is not counted). */
static inline int cray__mailq_peek(cray__mailq *q) {
  /* acquire: as in pop */
  return q->tail != &q->stub || atomic_load_explicit(&q->stub.next, memory_order_acquire);
}

/* Marks the queue idle: 1, or 0 when it is not empty or a push is busy. */
static inline int cray__mailq_mark_idle(cray__mailq *q) {
  if (cray__mailq_peek(q)) return 0;
  uintptr_t stub = (uintptr_t)&q->stub;
  /* acq_rel: the producer that takes the mark off sees what the consumer did before; a
   * failure (a push came) is acquired so its node is seen when popped */
  return atomic_compare_exchange_strong_explicit(&q->head, &stub, stub | CRAY__MAILQ_IDLE,
                                                 memory_order_acq_rel, memory_order_acquire) ||
         stub == ((uintptr_t)&q->stub | CRAY__MAILQ_IDLE);
}

#endif
