/*
 * test_mailq.c: an actor's mailbox queue (runtime/mailq.h): order, the idle mark, a push
 * caught halfway, and many producers against one consumer that sleeps on the mark.
 */
#include <pthread.h>
#include <sched.h>
#include <stddef.h>

#include "../../runtime/mailq.h"
#include "check.h"

typedef struct item {
  cray__mailq_node node;
  int producer, seq;
} item;

static item *item_of(cray__mailq_node *n) {
  return n ? (item *)(void *)((char *)n - offsetof(item, node)) : NULL;
}

static void test_order_and_mark(void) {
  cray__mailq q;
  item v[3] = {{.seq = 0}, {.seq = 1}, {.seq = 2}};
  cray__mailq_init(&q, 0);
  CHECK(cray__mailq_pop(&q) == NULL);
  CHECK_EQ(cray__mailq_push(&q, &v[0].node), 0); /* not marked: nobody is told */
  CHECK_EQ(cray__mailq_mark_idle(&q), 0);        /* not empty */
  CHECK(item_of(cray__mailq_pop(&q)) == &v[0]);
  CHECK_EQ(cray__mailq_mark_idle(&q), 1);
  CHECK_EQ(cray__mailq_mark_idle(&q), 1); /* marked already */
  CHECK_EQ(cray__mailq_push(&q, &v[1].node), 1); /* took the mark off */
  CHECK_EQ(cray__mailq_push(&q, &v[2].node), 0);
  CHECK(cray__mailq_peek(&q));
  CHECK(item_of(cray__mailq_pop(&q)) == &v[1]);
  CHECK(item_of(cray__mailq_pop(&q)) == &v[2]);
  CHECK(cray__mailq_pop(&q) == NULL);
  CHECK(!cray__mailq_peek(&q));
  CHECK_EQ(cray__mailq_mark_idle(&q), 1);
  cray__mailq_init(&q, 1);
  CHECK_EQ(cray__mailq_push(&q, &v[0].node), 1); /* made idle */
}

static void test_push_caught_halfway(void) {
  cray__mailq q;
  item v[2];
  cray__mailq_init(&q, 0);
  cray__mailq_push(&q, &v[0].node);
  uintptr_t prev = cray__mailq_swap(&q, &v[1].node);
  CHECK_EQ(prev & CRAY__MAILQ_IDLE, 0);
  /* v[1] is not linked yet: v[0], the last node reachable, cannot leave before it is */
  CHECK(cray__mailq_pop(&q) == NULL);
  CHECK_EQ(cray__mailq_mark_idle(&q), 0); /* nor can the queue be marked idle */
  cray__mailq_link(prev, &v[1].node);
  CHECK(item_of(cray__mailq_pop(&q)) == &v[0]);
  CHECK(item_of(cray__mailq_pop(&q)) == &v[1]);
  CHECK_EQ(cray__mailq_mark_idle(&q), 1);
}

enum { PRODUCERS = 4, PER_PRODUCER = 50000 };

static cray__mailq shared_q;
static _Atomic int wakes; /* pushes that took the mark off */
static item items[PRODUCERS][PER_PRODUCER];

static void *produce(void *arg) {
  item *mine = arg;
  for (int i = 0; i < PER_PRODUCER; i++) {
    /* release: the consumer that sees the count sees the pushed item linked */
    if (cray__mailq_push(&shared_q, &mine[i].node))
      atomic_fetch_add_explicit(&wakes, 1, memory_order_release);
  }
  return NULL;
}

static void test_many_producers(void) {
  cray__mailq_init(&shared_q, 1);
  atomic_init(&wakes, 0);
  pthread_t th[PRODUCERS];
  for (int p = 0; p < PRODUCERS; p++) {
    for (int i = 0; i < PER_PRODUCER; i++) items[p][i] = (item){.producer = p, .seq = i};
    CHECK_EQ(pthread_create(&th[p], NULL, produce, items[p]), 0);
  }
  int next[PRODUCERS] = {0}, got = 0, out_of_order = 0, marks = 0, seen_wakes = 0;
  while (got < PRODUCERS * PER_PRODUCER) {
    /* Asleep while marked: only the push that takes the mark off wakes the consumer, as
     * it lists an idle actor. A lost wake would hang here. */
    /* acquire: pairs with the producer's count */
    while (atomic_load_explicit(&wakes, memory_order_acquire) == seen_wakes) sched_yield();
    seen_wakes++;
    for (;;) {
      item *it;
      while ((it = item_of(cray__mailq_pop(&shared_q)))) {
        if (it->seq != next[it->producer]) out_of_order++;
        next[it->producer] = it->seq + 1;
        got++;
      }
      if (cray__mailq_mark_idle(&shared_q)) break;
      sched_yield(); /* a push is halfway, or came since the last pop */
    }
    marks++;
  }
  for (int p = 0; p < PRODUCERS; p++) pthread_join(th[p], NULL);
  CHECK_EQ(got, PRODUCERS * PER_PRODUCER);
  CHECK_EQ(out_of_order, 0);
  /* Every mark but the last was taken off by exactly one push. */
  CHECK_EQ(atomic_load_explicit(&wakes, memory_order_relaxed), marks);
  CHECK(cray__mailq_pop(&shared_q) == NULL);
}

int main(void) {
  RUN(test_order_and_mark);
  RUN(test_push_caught_halfway);
  RUN(test_many_producers);
  return check_done();
}
