/*
 * lstate.c: the per-state context, the error objects raised from C, and how messages
 * show values and point at the user's code.
 */
#include "lstate.h"

#include <lauxlib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

cray__lstate *cray__lstate_get(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, CRAY__REG_LSTATE);
  cray__lstate *ls = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return ls;
}

int cray__user_level(lua_State *L, int level) {
  lua_Debug ar;
  for (; lua_getstack(L, level, &ar); level++) {
    lua_getinfo(L, "Sl", &ar);
    if (strncmp(ar.source, CRAY__CHUNK_PREFIX, sizeof CRAY__CHUNK_PREFIX - 1) != 0)
      return ar.currentline > 0 ? level : 0;
  }
  return 0;
}

/* Whether a traceback's line is a frame of one of cray's chunks. */
static int ours(const char *line) {
  return line[0] == '\t' && strncmp(line + 1, &CRAY__CHUNK_PREFIX[1],
                                     sizeof CRAY__CHUNK_PREFIX - 2) == 0;
}

void cray__traceback_clean(lua_State *L) {
  const char *tb = lua_tostring(L, -1);
  int kept = 0;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (const char *line = tb; *line;) {
    const char *end = strchr(line, '\n'), *next = end ? end + 1 : "";
    size_t len = end ? (size_t)(end - line) : strlen(line);
    /* A C function right above a frame of cray's was called by cray: its own too. */
    int c_of_ours = strncmp(line, "\t[C]:", 5) == 0 && ours(next);
    if (!ours(line) && !c_of_ours) {
      if (line != tb) luaL_addchar(&b, '\n');
      luaL_addlstring(&b, line, len);
      kept += line != tb;
    }
    line = next;
  }
  luaL_pushresult(&b);
  if (!kept) { /* the header alone */
    lua_pop(L, 1);
    lua_pushliteral(L, "");
  }
  lua_replace(L, -2);
}

/* The message starts with the position of the user's code that called cray, as
 * luaL_error's does with its caller's; the traceback starts there too. */
void cray__error_push(lua_State *L, const char *kind, const char *msg) {
  int level = cray__user_level(L, 1);
  lua_createtable(L, 0, 4);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  if (level) luaL_where(L, level);
  else lua_pushliteral(L, "");
  lua_pushstring(L, msg);
  lua_concat(L, 2);
  lua_setfield(L, -2, "message");
  luaL_traceback(L, L, NULL, level ? level : 1);
  cray__traceback_clean(L);
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

/* What cray's own values are, by their registered class. */
static const char *const cray_kinds[][2] = {
    {"cray.RemoteFunction", "a remote function"},
    {"cray.RemoteCaller", "a remote function's .remote"},
    {"cray.RemoteOptions", "a remote function's .options"},
    {"cray.ActorClass", "an actor class"},
    {"cray.ActorCreator", "an actor class's .remote"},
    {"cray.ActorOptions", "an actor class's .options"},
    {"cray.ActorHandle", "an actor handle"},
    {"cray.ActorMethod", "an actor method"},
    {"cray.ActorCallOptions", "an actor method's .options"},
    {NULL, NULL},
};

static const char *push(lua_State *L, const char *s) {
  lua_pushstring(L, s);
  return lua_tostring(L, -1);
}

#define SHOW_STRING_MAX 40 /* bytes of a string a message shows */

static void add_quoted(luaL_Buffer *b, const char *s, size_t len) {
  luaL_addchar(b, '"');
  for (size_t i = 0; i < len && i < SHOW_STRING_MAX; i++) {
    unsigned char c = (unsigned char)s[i];
    char esc[8];
    if (c == '"' || c == '\\') {
      luaL_addchar(b, '\\');
      luaL_addchar(b, (char)c);
    } else if (c < 32 || c == 127) {
      snprintf(esc, sizeof esc, "\\%d", c);
      luaL_addstring(b, esc);
    } else {
      luaL_addchar(b, (char)c);
    }
  }
  luaL_addchar(b, '"');
  if (len > SHOW_STRING_MAX) luaL_addstring(b, "...");
}

const char *cray__describe(lua_State *L, int idx) {
  if (idx < 0 && idx > LUA_REGISTRYINDEX) idx = lua_gettop(L) + idx + 1;
  int t = lua_type(L, idx);
  if (t == LUA_TNONE) return push(L, "nothing");
  if (t == LUA_TNIL) return push(L, "nil");
  if (t == LUA_TBOOLEAN) return push(L, lua_toboolean(L, idx) ? "true" : "false");
  if (t == LUA_TNUMBER) {
    double v = lua_tonumber(L, idx);
    char num[64];
    if (isnan(v)) snprintf(num, sizeof num, "nan");
    else if (isinf(v)) snprintf(num, sizeof num, v > 0 ? "inf" : "-inf");
    else if (v == floor(v) && fabs(v) < 1e21) snprintf(num, sizeof num, "%.0f", v);
    else snprintf(num, sizeof num, "%.14g", v);
    return push(L, num);
  }
  luaL_Buffer b;
  if (t == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    luaL_buffinit(L, &b);
    add_quoted(&b, s, len);
    luaL_pushresult(&b);
    return lua_tostring(L, -1);
  }
  if (lua_getmetatable(L, idx)) {
    const char *what = NULL;
    lua_getfield(L, LUA_REGISTRYINDEX, CRAY__REG_OBJREF_MT);
    lua_getfield(L, LUA_REGISTRYINDEX, CRAY__REG_ERROR_MT);
    if (lua_rawequal(L, -3, -2)) what = "an ObjectRef";
    else if (lua_rawequal(L, -3, -1)) what = "an error object";
    lua_pop(L, 2);
    lua_getfield(L, LUA_REGISTRYINDEX, CRAY__REG_CLASSES);
    if (lua_istable(L, -1)) {
      lua_pushvalue(L, -2);
      lua_rawget(L, -2);
    } else {
      lua_pushnil(L);
    }
    const char *name = what ? NULL : lua_tostring(L, -1); /* [mt, classes, name] */
    for (int i = 0; name && !what && cray_kinds[i][0]; i++)
      if (strcmp(name, cray_kinds[i][0]) == 0) what = cray_kinds[i][1];
    if (what) push(L, what);
    else if (name) lua_pushfstring(L, "a table of class '%s'", name);
    if (what || name) {
      lua_replace(L, -4);
      lua_pop(L, 2);
      return lua_tostring(L, -1);
    }
    lua_pop(L, 3);
  }
  switch (t) {
    case LUA_TTABLE: return push(L, "a table");
    case LUA_TFUNCTION: return push(L, "a function");
    case LUA_TTHREAD: return push(L, "a coroutine");
    case LUA_TLIGHTUSERDATA: return push(L, "a light userdata");
    case LUA_TUSERDATA: return push(L, "a userdata");
    default: return lua_pushfstring(L, "a %s", luaL_typename(L, idx));
  }
}
