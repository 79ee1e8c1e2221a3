/*
 * bigmem.h: large blocks (blobs of a megabyte and more), mapped from the kernel and kept
 * for reuse.
 *
 * The first touch of a fresh page costs a fault and the zeroing of the page, which for a
 * big put is several times the cost of the copy itself (on the reference machine a copy
 * into fresh memory runs at 2.7 GB/s, into memory already touched at 20 GB/s). So freed
 * blocks are kept, up to a cap in bytes and in count, and handed to the next allocation
 * after a resize in place (mremap keeps the pages that stay), and a loop that puts and
 * drops large values copies into memory that is already faulted in. Fresh mappings ask
 * for transparent huge pages, which cut the faults by 512 where the kernel allows them.
 *
 * One mutex guards the cached list; it is held for list operations and mremap, never for
 * a copy. A NULL cray__bigmem is allowed everywhere: nothing is cached.
 */
#ifndef CRAY_BIGMEM_H
#define CRAY_BIGMEM_H

#include <pthread.h>
#include <stddef.h>

/* Blocks at least this big are mapped; smaller ones come from cray__malloc. */
#define CRAY__BIG_MIN ((size_t)1 << 20)
#define CRAY__BIG_SLOTS 4

typedef struct cray__bigmem {
  pthread_mutex_t mu;
  size_t cap;    /* most bytes kept cached */
  size_t cached; /* bytes in cached blocks */
  int n;
  struct {
    void *p;
    size_t size; /* page multiple */
  } slot[CRAY__BIG_SLOTS];
} cray__bigmem;

void cray__bigmem_init(cray__bigmem *m, size_t cap);
/* Unmaps every cached block; blocks handed out stay valid. */
void cray__bigmem_destroy(cray__bigmem *m);

/* A block of at least n bytes (page-aligned), or NULL. */
void *cray__bigmem_alloc(cray__bigmem *m, size_t n);
/* Gives back a block of n bytes (the n it was allocated with): cached or unmapped. */
void cray__bigmem_free(cray__bigmem *m, void *p, size_t n);
/* Unmaps the cached blocks, under memory pressure. */
void cray__bigmem_trim(cray__bigmem *m);

#endif
