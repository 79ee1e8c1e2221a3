/*
 * runtime.h: what a cray_runtime holds. One per cray_open; the Lua module keeps one for
 * the process between cray.init and cray.shutdown.
 *
 * Owns the id generator, the object store and a copy of the options. The options' strings
 * and arrays are copied at open and freed at close.
 */
#ifndef CRAY_RUNTIME_H
#define CRAY_RUNTIME_H

#include "cray.h"
#include "id.h"
#include "store.h"

struct cray_runtime {
  cray_options opts; /* copies; workers and memory resolved to their defaults */
  cray__idgen ids;
  cray__store *store;
};

/* Copies src into dst (strings and arrays duplicated); on failure dst is left for
 * cray__options_free. */
int cray__options_copy(cray_options *dst, const cray_options *src);
void cray__options_free(cray_options *o);

/* Why the last cray_open of the calling thread failed (rc is what it returned): the
 * spill directory it could not use, say; a static text for rc otherwise. */
const char *cray__open_error(int rc);

/* Physical memory in bytes, or 0 when it cannot be read. */
size_t cray__physical_memory(void);
/* Online CPUs, at least 1. */
int cray__online_cpus(void);

#endif
