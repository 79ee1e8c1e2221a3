/*
 * stream.h: the Lua side of streaming tasks (runtime/stream.h): the consumer's stream
 * userdata and the producer's step, which bindings/executor.c takes at each
 * coroutine.yield of a streaming task.
 */
#ifndef CRAY_BINDINGS_STREAM_H
#define CRAY_BINDINGS_STREAM_H

#include <lauxlib.h>

#include "../runtime/task.h"
#include "lstate.h"

extern const luaL_Reg cray__stream_functions[];

/* Makes t (built, its returns filled, not submitted) a streaming task that pauses when
 * `backpressure` items (<= 0: no bound) are not taken: pushes the consumer's stream
 * userdata; returns 1. Raises when memory is short, after releasing t. */
int cray__stream_push(lua_State *L, cray__lstate *ls, cray__task *t, lua_Number backpressure);

/* num_returns in a spec, as lua/remote.lua and lua/actor.lua write it for "streaming". */
#define CRAY__STREAMING (-2)

#endif
