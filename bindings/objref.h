/*
 * objref.h: ObjectRef, the Lua value that names a stored object.
 *
 * A full userdata holding the store entry it names and one reference to it, dropped by
 * __gc: at once, or for a small value's entry queued on the state and released with the
 * others (objref.c). `tostring` shows the id, `==` compares ids. A ref made under a runtime that has
 * since shut down is stale: its __gc does nothing and using it raises an error.
 *
 * The userdata holds the entry's pointer and nothing else (8 bytes, 64 resident with
 * LuaJIT's header and its allocator's): which runtime a ref was made under is told by its
 * metatable, made anew for each runtime a state binds to (ls->objref_epoch), so a ref
 * whose metatable is not the state's current one is stale.
 */
#ifndef CRAY_OBJREF_H
#define CRAY_OBJREF_H

#include <lua.h>

#include "lstate.h"

typedef struct cray__objref {
  cray__entry *e;
} cray__objref;

/* Registers the metatable under CRAY__REG_OBJREF_MT (replaced when the state binds to
 * another runtime). */
void cray__objref_open(lua_State *L);
/* Pushes a new ObjectRef for e, taking over one reference the caller holds. */
void cray__objref_push(lua_State *L, cray__lstate *ls, cray__entry *e);
/* As cray__objref_push, for an entry that holds a small value inside it with no refs
 * nested (cray__store_insert_inline's): its finalizer queues the entry on ls->dropped. */
void cray__objref_push_small(lua_State *L, cray__lstate *ls, cray__entry *e);
/* Releases the entries queued on ls->dropped. Called before anything this state does that
 * may observe the store (every call into cray, the end of a run of a task) and before
 * the state binds to another runtime. */
void cray__objref_flush_slow(cray__lstate *ls);
static inline void cray__objref_flush(cray__lstate *ls) {
  if (ls->ndropped) cray__objref_flush_slow(ls);
}
/* Pushes an ObjectRef that names nothing yet (its __gc does nothing): made before what it
 * will name, so that running out of memory for it leaks nothing. */
void cray__objref_push_unset(lua_State *L, cray__lstate *ls);
/* Makes the unset ObjectRef at idx name e, taking over one reference the caller holds.
 * Allocates nothing and raises nothing. */
void cray__objref_set(lua_State *L, int idx, cray__entry *e);
/* The entry of the ObjectRef at idx, or NULL when the value there is not one. Raises an
 * error when it is a stale ref. The entry is borrowed from the ref. */
cray__entry *cray__objref_test(lua_State *L, cray__lstate *ls, int idx);

#endif
