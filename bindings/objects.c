/*
 * objects.c: cray.objects(), what holds memory, like `ray memory`.
 *
 * Each object is listed with its id (32 hex digits), bytes, where they are ("memory",
 * "disk" once spilled, "pending" before its task ends, "error" for a failure), who made
 * it (runtime/sites.h: a task's name, or "put at file:line") and how many references
 * hold it, sorted by size. Naming a put's line costs a look at the caller's frame, so it
 * is done for puts of CRAY__SITE_LINE_MIN bytes and more, which are the ones that hold
 * memory; smaller ones are "put".
 */
#include "objects.h"

#include <lauxlib.h>
#include <stdio.h>

#include "../runtime/alloc.h"
#include "../runtime/sites.h"
#include "../runtime/store_list.h"
#include "lstate.h"
#include "module.h"

void cray__objects_note_put(lua_State *L, cray_runtime *rt, cray__entry *e, size_t len) {
  lua_Debug ar;
  char text[256];
  const char *site = "put";
  if (len >= CRAY__SITE_LINE_MIN && lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar) &&
      ar.currentline > 0) {
    snprintf(text, sizeof text, "put at %s:%d", ar.short_src, ar.currentline);
    site = text;
  }
  /* relaxed: shown by cray.objects() only; the text is published by interning */
  atomic_store_explicit(&e->site, cray__sites_intern(rt->sites, site), memory_order_relaxed);
}

static const char *const where_names[] = {"pending", "memory", "disk", "error"};

/* The list is held by a userdata while Lua tables are made, so a Lua error (a worker
 * state's memory limit) frees it with the userdata instead of leaking it. */
static int holder_gc(lua_State *L) {
  cray__object_info **list = lua_touserdata(L, 1);
  cray__free(*list);
  *list = NULL;
  return 0;
}

int cray__objects_l(lua_State *L) {
  cray_runtime *rt = cray__module_rt(L, lua_touserdata(L, lua_upvalueindex(1)));
  cray__object_info **holder = lua_newuserdata(L, sizeof *holder);
  *holder = NULL;
  if (luaL_newmetatable(L, "cray.objects_list")) {
    lua_pushcfunction(L, holder_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  size_t n;
  if (cray__store_list(rt->store, holder, &n) != 0)
    return luaL_error(L, "cray.objects: no memory for the list");
  const cray__object_info *list = *holder;
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    char hex[33];
    cray_id_format(&list[i].id, hex);
    const char *made_by = cray__sites_name(rt->sites, list[i].site);
    lua_createtable(L, 0, 5);
    lua_pushstring(L, hex);
    lua_setfield(L, -2, "id");
    lua_pushnumber(L, (lua_Number)list[i].bytes);
    lua_setfield(L, -2, "bytes");
    lua_pushstring(L, where_names[list[i].where]);
    lua_setfield(L, -2, "where");
    lua_pushstring(L, made_by ? made_by : "?");
    lua_setfield(L, -2, "made_by");
    lua_pushnumber(L, list[i].refs);
    lua_setfield(L, -2, "refs");
    lua_rawseti(L, -2, (int)i + 1);
  }
  cray__free(*holder);
  *holder = NULL;
  return 1;
}
