/*
 * blob_lua.c (fuzz target): the Lua codec decoding a blob of any bytes, as a state
 * decodes what another process or a C caller sent.
 *
 * Input: a first byte, then the blob's bytes. The first byte's low 2 bits plus one are
 * the blob's value count, its next 2 bits how many of the two fixed objects (ids 00..0f
 * and 10..1f) its ref table lists. The blob is untrusted: no bytecode loads from it.
 * Promises: decoding pushes the values or raises a serialization error, nothing else;
 * the values it pushes encode again, and that blob decodes to as many values.
 */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "../../bindings/codec.h"
#include "fuzz.h"
#include "objects.h"

static cray_runtime *rt;
static lua_State *L;

/* The message of the error at the top of L's stack. */
static const char *message(lua_State *L) {
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "message");
    const char *m = lua_isstring(L, -1) ? lua_tostring(L, -1) : "(no message)";
    lua_pop(L, 1);
    return m;
  }
  return lua_isstring(L, -1) ? lua_tostring(L, -1) : "(not an error object)";
}

static const char *kind_of(lua_State *L, int idx) {
  if (!lua_istable(L, idx)) return "(not an error object)";
  lua_getfield(L, idx, "kind");
  const char *k = lua_isstring(L, -1) ? lua_tostring(L, -1) : "(no kind)";
  lua_pop(L, 1);
  return k;
}

static int decode(lua_State *L) {
  return cray__codec_decode(L, cray__lstate_get(L), lua_touserdata(L, 1), -1);
}

/* Encodes its arguments and decodes the blob they make; returns how many came back. */
static int reencode(lua_State *L) {
  cray__lstate *ls = cray__lstate_get(L);
  int n = lua_gettop(L);
  cray__codec_encode(L, ls, 1, n, "value");
  cray__blob *b = cray__codec_blob(ls, rt->store, (uint32_t)n, 0);
  FUZZ_CHECK(b != NULL);
  lua_settop(L, 0);
  lua_pushinteger(L, n);
  lua_pushcfunction(L, decode);
  lua_pushlightuserdata(L, b);
  int rc = lua_pcall(L, 1, LUA_MULTRET, 0);
  cray__blob_release(rt->store, b);
  if (rc != 0) {
    fprintf(stderr, "blob_lua: a re-encoded blob fails to decode: %s\n", message(L));
    FUZZ_CHECK(0);
  }
  int got = lua_gettop(L) - 1;
  lua_settop(L, 1);
  lua_pushinteger(L, got);
  return 2;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  L = fuzz_driver(&rt);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint32_t count = 1 + (data[0] & 3), nrefs = (data[0] >> 2) & 3;
  if (nrefs > FUZZ_NOBJECTS) nrefs = FUZZ_NOBJECTS;
  cray__blob *b = cray__blob_new(data + 1, size - 1, count, fuzz_objects, nrefs, 0);
  FUZZ_CHECK(b != NULL);
  lua_settop(L, 0);
  lua_pushcfunction(L, decode);
  lua_pushlightuserdata(L, b);
  int rc = lua_pcall(L, 1, LUA_MULTRET, 0);
  cray__blob_release(rt->store, b);
  if (rc != 0) {
    FUZZ_CHECK(strcmp(kind_of(L, -1), "serialization") == 0);
  } else {
    FUZZ_CHECK(lua_gettop(L) == (int)count);
    lua_pushcfunction(L, reencode);
    lua_insert(L, 1);
    rc = lua_pcall(L, (int)count, 2, 0);
    if (rc != 0) fprintf(stderr, "blob_lua: decoded values fail to encode: %s\n", message(L));
    FUZZ_CHECK(rc == 0 && lua_tointeger(L, -1) == lua_tointeger(L, -2));
  }
  lua_settop(L, 0);
  lua_gc(L, LUA_GCCOLLECT, 0);
  fuzz_keep_buffers(cray__lstate_get(L));
  return 0;
}
