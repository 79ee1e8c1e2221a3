/*
 * timeline.h: cray.timeline([path]), the Lua face of the timeline recorder
 * (runtime/trace.h, bindings/timeline.c).
 */
#ifndef CRAY_BINDINGS_TIMELINE_H
#define CRAY_BINDINGS_TIMELINE_H

#include <lua.h>

/* cray.timeline([path]): starts recording when it is off; with a path, writes what was
 * recorded so far there as Chrome trace-event JSON (recording goes on) and returns the
 * number of events written and the number dropped. cray.timeline(false) stops recording. A C function of the module: its first
 * upvalue is the state's cray__lstate. */
int cray__timeline_l(lua_State *L);

#endif
