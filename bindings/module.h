/*
 * module.h: the `cray` Lua module (luaopen_cray) and the runtime it drives.
 *
 * A state gets its runtime one of two ways: cray.init in Lua opens the process-wide
 * runtime (or the first call that needs one opens it with defaults, as Ray does), or an
 * embedding program lends its own with cray__module_attach, and cray.init/shutdown then
 * refuse to replace it.
 */
#ifndef CRAY_MODULE_H
#define CRAY_MODULE_H

#include <lua.h>

#include "../runtime/cray.h"

CRAY_API int luaopen_cray(lua_State *L);

/* The runtime L uses; the process runtime is started with defaults when there is none
 * yet. Raises when it cannot start. */
struct cray__lstate;
cray_runtime *cray__module_rt(lua_State *L, struct cray__lstate *ls);

/* Makes L (which must have loaded `cray`) use rt, owned by the caller, until L closes. */
void cray__module_attach(lua_State *L, cray_runtime *rt);

/* From any thread (crayrun's signal thread): starts stopping the process runtime, if one
 * is open (cray__sched_interrupt). */
void cray__module_interrupt(void);
/* From a signal handler: notes that the program was told to stop, which ends a driver's
 * cray.sleep (cray__module_was_signalled tells). */
void cray__module_signalled(void);
int cray__module_was_signalled(void);
/* Whether closing the process runtime gave up on tasks that did not end (cray__close):
 * crayrun then exits with status 3. */
int cray__module_abandoned(void);

#endif
