/*
 * lstate.c: the per-state context and the error objects raised from C.
 */
#include "lstate.h"

#include <lauxlib.h>
#include <stdarg.h>
#include <stdio.h>

cray__lstate *cray__lstate_get(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, CRAY__REG_LSTATE);
  cray__lstate *ls = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return ls;
}

/* The message starts with the caller's position, as luaL_error's does; the traceback is
 * the caller's stack. */
void cray__error_push(lua_State *L, const char *kind, const char *msg) {
  lua_createtable(L, 0, 4);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  luaL_where(L, 1);
  lua_pushstring(L, msg);
  lua_concat(L, 2);
  lua_setfield(L, -2, "message");
  luaL_traceback(L, L, NULL, 1);
  lua_setfield(L, -2, "traceback");
  lua_getfield(L, LUA_REGISTRYINDEX, CRAY__REG_ERROR_MT);
  lua_setmetatable(L, -2);
}

int cray__raise(lua_State *L, const char *kind, const char *fmt, ...) {
  char msg[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  cray__error_push(L, kind, msg);
  return lua_error(L);
}
