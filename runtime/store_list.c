/*
 * store_list.c: a snapshot of the objects the store holds, for cray.objects().
 *
 * Walks the shards one at a time, each under its lock (so `stored` and the counts are
 * steady while read, store.h), copying what each entry is: its id, bytes, where the bytes
 * are, references and site. Objects made or freed meanwhile in shards already walked are
 * missed or kept: a snapshot, not a barrier. Actors' entries are left out.
 */
#include "store_list.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "store_internal.h"

static int bigger_first(const void *a, const void *b) {
  const cray__object_info *x = a, *y = b;
  if (x->bytes != y->bytes) return x->bytes < y->bytes ? 1 : -1;
  return memcmp(&x->id, &y->id, sizeof x->id);
}

int cray__store_list(cray__store *s, cray__object_info **out, size_t *n) {
  size_t cap = 64, k = 0;
  cray__object_info *list = cray__malloc(cap * sizeof *list);
  if (!list) return CRAY_ENOMEM;
  for (int i = 0; i < NSHARDS; i++) {
    shard *sh = &s->shards[i];
    pthread_mutex_lock(&sh->mu);
    if (k + sh->count > cap) {
      size_t want = (k + sh->count) * 2;
      cray__object_info *bigger = cray__realloc(list, want * sizeof *list);
      if (!bigger) {
        pthread_mutex_unlock(&sh->mu);
        cray__free(list);
        return CRAY_ENOMEM;
      }
      list = bigger, cap = want;
    }
    for (size_t c = 0; c < cray__shard_nchains(sh); c = cray__shard_step(sh, c)) {
      for (cray__entry *e = cray__shard_chain(sh, c); e; e = e->next) {
        if (e->actor) continue;
        uint32_t state = cray__entry_state(e);
        /* relaxed: `stored` changes only under this lock, which is held */
        const cray__blob *blob = atomic_load_explicit(&e->stored, memory_order_relaxed);
        cray__object_info *o = &list[k++];
        o->id = e->id;
        o->bytes = state != CRAY__PENDING && blob ? blob->len : 0;
        o->where = state == CRAY__PENDING ? CRAY__OBJECT_PENDING
                   : state == CRAY__FAILED ? CRAY__OBJECT_ERROR
                   /* relaxed: written under this lock */
                   : atomic_load_explicit(&e->spilled, memory_order_relaxed) ? CRAY__OBJECT_DISK
                                                                             : CRAY__OBJECT_MEMORY;
        /* relaxed: counts and sites are shown, not acted on */
        o->refs = atomic_load_explicit(&e->refs, memory_order_relaxed);
        o->site = atomic_load_explicit(&e->site, memory_order_relaxed);
      }
    }
    pthread_mutex_unlock(&sh->mu);
  }
  qsort(list, k, sizeof *list, bigger_first);
  *out = list;
  *n = k;
  return 0;
}
