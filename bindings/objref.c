/*
 * objref.c: the ObjectRef userdata. See objref.h.
 */
#include "objref.h"

#include <lauxlib.h>

static cray__objref *to_objref(lua_State *L, cray__lstate *ls, int idx) {
  cray__objref *r = lua_touserdata(L, idx);
  if (!r || !lua_getmetatable(L, idx)) return NULL;
  int same = lua_topointer(L, -1) == ls->objref_mt_ptr;
  lua_pop(L, 1);
  return same ? r : NULL;
}

static int is_live(const cray__lstate *ls, const cray__objref *r) {
  return ls->rt && r->epoch == ls->epoch;
}

cray__entry *cray__objref_test(lua_State *L, cray__lstate *ls, int idx) {
  cray__objref *r = to_objref(L, ls, idx);
  if (!r) return NULL;
  if (!is_live(ls, r))
    cray__raise(L, "object_lost",
                "ObjectRef from a runtime that has been shut down (refs do not survive "
                "cray.shutdown)");
  return r->e;
}

void cray__objref_push_unset(lua_State *L, cray__lstate *ls) {
  cray__objref *r = lua_newuserdata(L, sizeof *r);
  r->e = NULL;
  r->epoch = ls->epoch;
  lua_rawgeti(L, LUA_REGISTRYINDEX, ls->objref_mt);
  lua_setmetatable(L, -2);
}

void cray__objref_set(lua_State *L, int idx, cray__entry *e) {
  cray__objref *r = lua_touserdata(L, idx);
  r->e = e;
}

void cray__objref_push(lua_State *L, cray__lstate *ls, cray__entry *e) {
  cray__objref_push_unset(L, ls);
  cray__objref_set(L, -1, e);
}

/* The state's context is upvalue 1: the context outlives every ObjectRef (the registry
 * holds it, and lua_close runs all finalizers before it frees anything). */
static int objref_gc(lua_State *L) {
  cray__lstate *ls = lua_touserdata(L, lua_upvalueindex(1));
  cray__objref *r = lua_touserdata(L, 1);
  if (ls && r && r->e && is_live(ls, r)) cray__store_release(ls->rt->store, r->e);
  if (r) r->e = NULL;
  return 0;
}

static void push_hex(lua_State *L, const cray__objref *r) {
  char hex[33];
  cray_id_format(&r->e->id, hex);
  lua_pushlstring(L, hex, 32);
}

static cray__objref *check(lua_State *L, int idx) {
  cray__lstate *ls = cray__lstate_get(L);
  cray__objref *r = to_objref(L, ls, idx);
  if (!r) luaL_typerror(L, idx, "ObjectRef");
  if (!is_live(ls, r)) cray__objref_test(L, ls, idx); /* raises */
  return r;
}

static int objref_tostring(lua_State *L) {
  cray__objref *r = lua_touserdata(L, 1);
  cray__lstate *ls = cray__lstate_get(L);
  if (!r || !r->e || !is_live(ls, r)) {
    lua_pushliteral(L, "ObjectRef(stale)");
    return 1;
  }
  lua_pushliteral(L, "ObjectRef(");
  push_hex(L, r);
  lua_pushliteral(L, ")");
  lua_concat(L, 3);
  return 1;
}

static int objref_eq(lua_State *L) {
  cray__objref *a = check(L, 1), *b = check(L, 2);
  lua_pushboolean(L, cray__id_eq(&a->e->id, &b->e->id));
  return 1;
}

static int objref_hex(lua_State *L) {
  push_hex(L, check(L, 1));
  return 1;
}

void cray__objref_open(lua_State *L) {
  cray__lstate *ls = cray__lstate_get(L);
  lua_createtable(L, 0, 5);
  lua_pushlightuserdata(L, ls);
  lua_pushcclosure(L, objref_gc, 1);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, objref_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, objref_eq);
  lua_setfield(L, -2, "__eq");
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, objref_hex);
  lua_setfield(L, -2, "hex");
  lua_setfield(L, -2, "__index");
  lua_pushliteral(L, "ObjectRef");
  lua_setfield(L, -2, "__metatable");
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, CRAY__REG_OBJREF_MT);
  ls->objref_mt_ptr = lua_topointer(L, -1);
  ls->objref_mt = luaL_ref(L, LUA_REGISTRYINDEX);
}
