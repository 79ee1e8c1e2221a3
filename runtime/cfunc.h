/*
 * cfunc.h: C functions registered as tasks ("c.NAME"), and running them.
 *
 * The registry maps names to (function, user data) under one mutex, held only to copy an
 * entry in or out. A task runs a C function when its function object is the string
 * "c.NAME" (what cray.remote("c.NAME") and cray_call store): the scheduler asks
 * cray__cfunc_run before it hands a task to the executor, so C functions run on a worker
 * thread without touching its Lua state. The function sees the arguments as one
 * MessagePack array (top-level refs replaced by their first values) and appends its
 * results to a cray_buffer; they are checked and stored as an untrusted blob.
 */
#ifndef CRAY_CFUNC_H
#define CRAY_CFUNC_H

#include <pthread.h>

#include "cray.h"
#include "task.h"

typedef struct cray__cfuncs {
  pthread_mutex_t mu;
  struct cray__cfunc *head; /* a list: programs register a handful */
} cray__cfuncs;

void cray__cfuncs_init(cray__cfuncs *r);
void cray__cfuncs_free(cray__cfuncs *r);

/* Whether "c.NAME" (full[0..len)) is registered. */
int cray__cfunc_exists(cray__cfuncs *r, const char *full, size_t len);

/* Runs t when its function is a C one: CRAY__RUN_DONE (its returns resolved) or
 * CRAY__RUN_RAISED (t->error set: the function failed, returned malformed results, or
 * "c.NAME" is not registered). -1 when t's function is not a C function. On a worker
 * thread of rt's scheduler. */
int cray__cfunc_run(cray_runtime *rt, cray__task *t);

#endif
