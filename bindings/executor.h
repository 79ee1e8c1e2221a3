/*
 * executor.h: the LuaJIT executor: worker states, and tasks run as coroutines in them.
 *
 * Each worker thread owns one lua_State made with a counting allocator (its heap limit is
 * --worker-memory), with the standard libraries, `cray`, and the driver's package.path
 * and package.cpath. A task runs as a coroutine of that state; cray.get, cray.wait and
 * cray.sleep inside it arm a wait with the scheduler through the state's wait hook
 * (cray__lstate.wait, which this executor sets) and yield, and the worker resumes the
 * coroutine with CRAY__RETRY when the wait is over, so they look again.
 *
 * A state that runs out of memory is closed and made anew: the task that ran is lost
 * (the scheduler retries it), and so are the tasks suspended in it, which notice when
 * they are resumed (their coroutine belongs to an older generation of the state).
 */
#ifndef CRAY_EXECUTOR_H
#define CRAY_EXECUTOR_H

#include <lua.h>

#include "../runtime/sched.h"
#include "lstate.h"

/* What a resumed coroutine receives: "what you waited for may be there, look again". */
#define CRAY__RETRY ((void *)&cray__retry_token)
extern const char cray__retry_token;

/* The scheduler of ls's runtime, started on first use with this executor; worker states
 * get L's package.path and package.cpath. Raises when it cannot start. */
cray__sched *cray__exec_sched(lua_State *L, cray__lstate *ls);

/* The same for a C caller, which has no state: worker states keep the options' lua_path
 * and lua_cpath, or LuaJIT's defaults. NULL when it cannot start. */
cray__sched *cray__exec_sched_c(cray_runtime *rt);

/* Called by cray.get, cray.wait and cray.sleep (`fn` names it) when they must wait for
 * `want` of entries[0..n) (n == 0: a sleep) until `deadline` (monotonic seconds, < 0:
 * none). Returns 1 after arming the wait when the caller must `return lua_yield(L, 0)`,
 * or 0 when L is not a task's coroutine (the driver): the caller then blocks its thread.
 * Raises when L is in a worker but cannot yield (a coroutine the task made itself, or a
 * C function in between such as a table.sort comparator). `yieldable` is what
 * coroutine.isyieldable() said in L's Lua caller. */
int cray__exec_arm(lua_State *L, cray__lstate *ls, cray__entry *const *entries, size_t n,
                   size_t want, double deadline, int yieldable, const char *fn);

/* The checks of cray__exec_arm alone, for a caller that must know before it arms: 1 when
 * L is a task's coroutine that can yield, 0 when L is not in a worker (the driver); raises
 * as cray__exec_arm does otherwise. */
int cray__exec_can_wait(lua_State *L, cray__lstate *ls, int yieldable, const char *fn);

/* The task running in ls's state (a worker's), or NULL. */
cray__task *cray__exec_current(cray__lstate *ls);

/* Pushes the function or class stored in e (`type` LUA_TFUNCTION or LUA_TTABLE), cached
 * per state by id; a stored "module.name" is resolved with require. Raises when the value
 * is not of that type. */
void cray__exec_push_stored(lua_State *L, cray__lstate *ls, cray__entry *e, int type);

#endif
