/*
 * objref.c: the ObjectRef userdata. See objref.h.
 */
#include "objref.h"

#include <lauxlib.h>
#include <string.h>

/* An ObjectRef's entry pointer carries SMALL in its low bit when the entry holds a small
 * value inside it, with no refs nested (a put's, store.h): dropping it frees one slab block
 * and never another entry, so its finalizer queues it on the state's ls->dropped, to be
 * released with the others (cray__store_release_all), where any other is released at
 * once. Entries are aligned to 8 bytes at least. */
#define SMALL ((uintptr_t)1)

static inline cray__entry *entry_of(const cray__objref *r) {
  return (cray__entry *)((uintptr_t)r->e & ~SMALL);
}

/* A ref is live when its metatable is the state's current one, made for the runtime the
 * state is bound to now. */
static int is_live(const cray__lstate *ls, const void *mt) {
  return ls->rt && mt == ls->objref_mt_ptr && ls->objref_epoch == ls->epoch;
}

/* The ObjectRef at idx, or NULL when the value there is not one; *live says whether it
 * is of the current runtime. A metatable of an earlier runtime's refs is told by its
 * `__metatable` (userdata get metatables from C only). */
static cray__objref *to_objref(lua_State *L, cray__lstate *ls, int idx, int *live) {
  cray__objref *r = lua_touserdata(L, idx);
  if (!r || !lua_getmetatable(L, idx)) return NULL;
  const void *mt = lua_topointer(L, -1);
  *live = is_live(ls, mt);
  int same = mt == ls->objref_mt_ptr;
  if (!same) {
    lua_pushliteral(L, "__metatable");
    lua_rawget(L, -2);
    const char *name = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    same = name && strcmp(name, "ObjectRef") == 0;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return same ? r : NULL;
}

cray__entry *cray__objref_test(lua_State *L, cray__lstate *ls, int idx) {
  int live;
  cray__objref *r = to_objref(L, ls, idx, &live);
  if (!r) return NULL;
  if (!live)
    cray__raise(L, "object_lost",
                "ObjectRef from a runtime that has been shut down (refs do not survive "
                "cray.shutdown)");
  return entry_of(r);
}

void cray__objref_flush_slow(cray__lstate *ls) {
  uint32_t n = ls->ndropped;
  ls->ndropped = 0;
  cray__store_release_all(ls->rt->store, ls->dropped, n);
}

static int objref_gc(lua_State *L);
static int objref_tostring(lua_State *L);
static int objref_eq(lua_State *L);
static int objref_hex(lua_State *L);

/* Makes the metatable of the refs of the runtime the state is bound to now, and makes it
 * the current one. Its __gc has the state's context as upvalue 1 (the context outlives
 * every ObjectRef: the registry holds it, and lua_close runs all finalizers before it
 * frees anything) and the metatable itself as upvalue 2. */
static void make_mt(lua_State *L, cray__lstate *ls) {
  lua_createtable(L, 0, 5);
  lua_pushlightuserdata(L, ls);
  lua_pushvalue(L, -2);
  lua_pushcclosure(L, objref_gc, 2);
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
  ls->objref_epoch = ls->epoch;
  lua_rawseti(L, LUA_REGISTRYINDEX, ls->objref_mt); /* the slot objref_open took */
}

void cray__objref_push_unset(lua_State *L, cray__lstate *ls) {
  if (ls->objref_epoch != ls->epoch) make_mt(L, ls);
  cray__objref *r = lua_newuserdata(L, sizeof *r);
  r->e = NULL;
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

void cray__objref_push_small(lua_State *L, cray__lstate *ls, cray__entry *e) {
  cray__objref_push_unset(L, ls);
  cray__objref_set(L, -1, (cray__entry *)((uintptr_t)e | SMALL));
}

static int objref_gc(lua_State *L) {
  cray__lstate *ls = lua_touserdata(L, lua_upvalueindex(1));
  cray__objref *r = lua_touserdata(L, 1);
  if (ls && r && r->e && is_live(ls, lua_topointer(L, lua_upvalueindex(2)))) {
    if (!((uintptr_t)r->e & SMALL)) {
      cray__store_release(ls->rt->store, r->e);
    } else {
      ls->dropped[ls->ndropped++] = entry_of(r);
      if (ls->ndropped == CRAY__DROPPED_MAX) cray__objref_flush_slow(ls);
    }
  }
  if (r) r->e = NULL;
  return 0;
}

static void push_hex(lua_State *L, const cray__objref *r) {
  char hex[33];
  cray_id_format(&entry_of(r)->id, hex);
  lua_pushlstring(L, hex, 32);
}

static cray__objref *check(lua_State *L, int idx) {
  cray__lstate *ls = cray__lstate_get(L);
  int live;
  cray__objref *r = to_objref(L, ls, idx, &live);
  if (!r) luaL_typerror(L, idx, "ObjectRef");
  if (!live) cray__objref_test(L, ls, idx); /* raises */
  return r;
}

static int objref_tostring(lua_State *L) {
  cray__lstate *ls = cray__lstate_get(L);
  int live = 0;
  cray__objref *r = to_objref(L, ls, 1, &live);
  if (!r || !r->e || !live) {
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
  lua_pushboolean(L, cray__id_eq(&entry_of(a)->id, &entry_of(b)->id));
  return 1;
}

static int objref_hex(lua_State *L) {
  push_hex(L, check(L, 1));
  return 1;
}

void cray__objref_open(lua_State *L) {
  cray__lstate *ls = cray__lstate_get(L);
  lua_pushboolean(L, 0);
  ls->objref_mt = luaL_ref(L, LUA_REGISTRYINDEX); /* a slot of its own, filled below */
  make_mt(L, ls);
}
