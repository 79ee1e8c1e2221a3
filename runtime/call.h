/*
 * call.h: tasks made from C bytes (cray_call, cray_actor_create, cray_actor_call).
 *
 * A function or class named by a string ("module.fn", "c.NAME", "module.Class") is a
 * stored string that the executor resolves (with require) or the scheduler runs as a C
 * function; one object per distinct name is kept for the runtime's life, so every call
 * of a name shares it (and each worker decodes it once). Arguments arrive as one
 * MessagePack array and become the task's argument blob (its elements, untrusted), with
 * the refs at its top level as the task's dependencies.
 *
 * Locks: the names table's mutex, held only to find or add a name.
 */
#ifndef CRAY_CALL_H
#define CRAY_CALL_H

#include <pthread.h>

#include "cray.h"
#include "task.h"

typedef struct cray__names {
  pthread_mutex_t mu;
  struct cray__named *head;
} cray__names;

void cray__names_init(cray__names *n);
/* Drops every name's object; before the store is destroyed. */
void cray__names_free(cray__names *n, cray__store *s);

/* The stored string `name`, with one reference for the caller; NULL when memory is short. */
cray__entry *cray__named_entry(cray_runtime *rt, const char *name);

/* Whether s is 1 to max letters, digits and '_' (a C function's or a method's name). */
int cray__call_ident_ok(const char *s, size_t max);

/* Whether name is "module.name": letters, digits, '_' and '.', a dot inside, a last part
 * after it. */
int cray__call_name_ok(const char *name);

/* A task named `name` with `nreturns` pending returns, its arguments parsed from the
 * MessagePack array args[0..len). 0, CRAY_EINVAL, CRAY_EBADBLOB, CRAY_ENOTFOUND or
 * CRAY_ENOMEM; the caller sets fn (or the actor) and submits it. */
int cray__call_task(cray_runtime *rt, const char *name, const void *args, size_t len,
                    uint32_t nreturns, cray__task **out);

#endif
