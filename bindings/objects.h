/*
 * objects.h: cray.objects(), the store's objects as Lua tables (bindings/objects.c).
 */
#ifndef CRAY_BINDINGS_OBJECTS_H
#define CRAY_BINDINGS_OBJECTS_H

#include <lua.h>

#include "../runtime/runtime.h"

/* Records that the caller of cray.put (the Lua function one level up) made e, of len
 * bytes: "put at file:line" from CRAY__SITE_LINE_MIN bytes up, "put" below. */
#define CRAY__SITE_LINE_MIN 1024
void cray__objects_note_put(lua_State *L, cray_runtime *rt, cray__entry *e, size_t len);

/* cray.objects() -> {{id, bytes, where, made_by, refs}, ...}, largest first. A C function
 * of the module: its first upvalue is the state's cray__lstate. */
int cray__objects_l(lua_State *L);

#endif
