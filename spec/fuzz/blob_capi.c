/*
 * blob_capi.c (fuzz target): bytes from outside the process, as a C program hands them to
 * cray_put, and the Lua codec decoding what cray_put let in.
 *
 * Promises: cray_put accepts exactly one well-formed value or refuses with CRAY_EBADBLOB
 * or CRAY_ENOTFOUND (a ref to no object); what it accepts cray_get returns byte for byte;
 * a Lua state decodes it or raises a serialization error, and never loads code from it.
 * Two objects with fixed ids (00..0f and 10..1f, the bytes of their ids) exist, so inputs
 * can hold refs that resolve.
 */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "../../bindings/codec.h"
#include "../../runtime/runtime.h"
#include "../../runtime/store.h"
#include "fuzz.h"
#include "objects.h"

static cray_runtime *rt;
static lua_State *L;

static int decode(lua_State *L) {
  cray__entry *e = lua_touserdata(L, 1);
  return cray__codec_decode_entry(L, cray__lstate_get(L), e, -1, "fuzz");
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  L = fuzz_driver(&rt);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cray_id id;
  int rc = cray_put(rt, data, size, &id);
  FUZZ_CHECK(rc == 0 || rc == CRAY_EBADBLOB || rc == CRAY_ENOTFOUND);
  if (rc) return 0;
  cray_view v;
  FUZZ_CHECK(cray_get(rt, &id, 0, &v) == 0);
  FUZZ_CHECK(v.count == 1 && v.len == size && memcmp(v.data, data, size) == 0);
  cray_view_release(rt, &v);

  cray__entry *e = cray__store_lookup(rt->store, &id);
  FUZZ_CHECK(e != NULL);
  int top = lua_gettop(L);
  lua_pushcfunction(L, decode);
  lua_pushlightuserdata(L, e);
  if (lua_pcall(L, 1, LUA_MULTRET, 0) != 0) {
    lua_getfield(L, -1, "kind");
    FUZZ_CHECK(lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), "serialization") == 0);
  }
  lua_settop(L, top);
  lua_gc(L, LUA_GCCOLLECT, 0); /* drops the views and refs the values held */
  cray__store_release(rt->store, e);
  FUZZ_CHECK(cray_release(rt, &id) == 0);
  return 0;
}
