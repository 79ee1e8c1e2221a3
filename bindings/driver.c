/*
 * driver.c: see driver.h.
 */
#include "driver.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/alloc.h"
#include "executor.h"
#include "lstate.h"
#include "module.h"

static char *dup_top(lua_State *L) {
  const char *s = lua_tostring(L, -1);
  return cray__strdup(s ? s : "(error object is not a string)");
}

lua_State *cray__driver_new(cray_runtime *rt, char **err) {
  lua_State *L = luaL_newstate();
  if (!L) {
    if (err) *err = cray__strdup("cannot create a Lua state: out of memory");
    return NULL;
  }
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_cray);
  lua_setfield(L, -2, "cray");
  lua_pop(L, 2);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "cray");
  if (lua_pcall(L, 1, 1, 0) != 0) {
    if (err) *err = dup_top(L);
    lua_close(L);
    return NULL;
  }
  lua_setglobal(L, "cray");
  if (rt) cray__module_attach(L, rt);
  return L;
}

/* Error handler: cray error objects carry their own traceback; other values get one. */
static int traceback(lua_State *L) {
  if (lua_getmetatable(L, 1)) {
    lua_getfield(L, LUA_REGISTRYINDEX, CRAY__REG_ERROR_MT);
    int is_error = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (is_error) return 1;
  }
  const char *msg = lua_tostring(L, 1);
  if (!msg) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int cray__driver_pcall(lua_State *L, int nargs) {
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, traceback);
  lua_insert(L, base);
  int status = lua_pcall(L, nargs, 0, base);
  lua_remove(L, base);
  if (status == 0) return 0;
  lua_getglobal(L, "tostring");
  lua_insert(L, -2);
  lua_call(L, 1, 1);
  return 1;
}

static int start_sched(lua_State *L) {
  cray__lstate *ls = cray__lstate_get(L);
  cray__module_rt(L, ls);
  lua_pushlightuserdata(L, cray__exec_sched(L, ls));
  return 1;
}

struct cray__sched *cray__driver_sched(lua_State *L) {
  lua_pushcfunction(L, start_sched);
  if (lua_pcall(L, 0, 1, 0) != 0) {
    lua_pop(L, 1);
    return NULL;
  }
  struct cray__sched *s = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return s;
}
