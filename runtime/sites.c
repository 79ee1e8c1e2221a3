/*
 * sites.c: see sites.h for the design.
 *
 * Open addressing over NSITES slots from the text's hash (slot 0 is never used: it means
 * unknown). A slot, once set by a successful compare-and-swap, holds its text until the
 * table is freed, so a probe that meets a different text moves on, and one that meets
 * NULL tries to claim it; a loser compares with the winner's text.
 */
#include "sites.h"

#include <stdatomic.h>
#include <string.h>

#include "alloc.h"

#define NSITES 4096

struct cray__sites {
  _Atomic(char *) text[NSITES];
};

cray__sites *cray__sites_new(void) { return cray__calloc(1, sizeof(cray__sites)); }

void cray__sites_free(cray__sites *s) {
  if (!s) return;
  for (int i = 0; i < NSITES; i++) cray__free(atomic_load_explicit(&s->text[i], memory_order_relaxed));
  cray__free(s);
}

uint32_t cray__sites_intern(cray__sites *s, const char *text) {
  if (!text) return 0;
  uint32_t h = 2166136261u;
  for (const char *c = text; *c; c++) h = (h ^ (unsigned char)*c) * 16777619u;
  char *mine = NULL;
  for (uint32_t k = 0, i = h % (NSITES - 1) + 1; k < NSITES / 2; k++, i = i % (NSITES - 1) + 1) {
    /* acquire: a text seen here was written whole before its slot was claimed */
    char *t = atomic_load_explicit(&s->text[i], memory_order_acquire);
    if (!t) {
      if (!mine && !(mine = cray__strdup(text))) return 0;
      /* acq_rel: publishes our text; on failure, acquires the winner's */
      if (atomic_compare_exchange_strong_explicit(&s->text[i], &t, mine, memory_order_acq_rel,
                                                  memory_order_acquire))
        return i;
    }
    if (strcmp(t, text) == 0) {
      cray__free(mine);
      return i;
    }
  }
  cray__free(mine);
  return 0;
}

const char *cray__sites_name(cray__sites *s, uint32_t i) {
  /* acquire: as in cray__sites_intern */
  return i && i < NSITES ? atomic_load_explicit(&s->text[i], memory_order_acquire) : NULL;
}
