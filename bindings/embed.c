/*
 * embed.c: the C API's Lua drivers, cray_run_string and cray_run_file.
 */
#include <lauxlib.h>
#include <string.h>

#include "../runtime/alloc.h"
#include "driver.h"

static int run(cray_runtime *rt, const char *code, const char *name, const char *path,
               char **err) {
  if (err) *err = NULL;
  if (!rt || (!code && !path)) return CRAY_EINVAL;
  lua_State *L = cray__driver_new(rt, err);
  if (!L) return CRAY_ELUA;
  int status = code ? luaL_loadbuffer(L, code, strlen(code), name ? name : "=(string)")
                    : luaL_loadfile(L, path);
  if (status == 0) status = cray__driver_pcall(L, 0);
  if (status && err) {
    const char *msg = lua_tostring(L, -1);
    *err = cray__strdup(msg ? msg : "(error object is not a string)");
  }
  lua_close(L);
  return status ? CRAY_ELUA : 0;
}

int cray_run_string(cray_runtime *rt, const char *code, const char *name, char **err) {
  return run(rt, code, name, NULL, err);
}

int cray_run_file(cray_runtime *rt, const char *path, char **err) {
  return run(rt, NULL, NULL, path, err);
}
