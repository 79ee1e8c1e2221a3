/*
 * stream.c: see stream.h. The consumer's userdata holds the consumer's reference to the
 * stream; collecting it lets a paused producer go on (its items then have no taker and
 * are freed with the stream).
 */
#include "stream.h"

#include "../runtime/stream.h"
#include "module.h"
#include "objref.h"

#define STREAM_MT "cray.Stream"

/* The consumer's userdata: the stream, and the epoch of the runtime it belongs to. */
typedef struct consumer {
  cray__stream *st;
  unsigned epoch;
} consumer;

/* Its runtime may have shut down since: then the store is gone with its entries. */
static int stream_gc(lua_State *L) {
  cray__lstate *ls = lua_touserdata(L, lua_upvalueindex(1));
  consumer *c = lua_touserdata(L, 1);
  if (!c->st) return 0;
  if (ls->rt && ls->epoch == c->epoch) {
    cray__stream_abandon(c->st);
    cray__stream_release(c->st);
  } else {
    cray__stream_release_orphan(c->st);
  }
  c->st = NULL;
  return 0;
}

/* (ls, t, backpressure): cray__stream_push's work, under its pcall */
static int push(lua_State *L) {
  cray__lstate *ls = lua_touserdata(L, 1);
  cray__task *t = lua_touserdata(L, 2);
  lua_Number bp = lua_tonumber(L, 3);
  size_t backpressure = bp > 0 ? (size_t)bp : 0;
  consumer *c = lua_newuserdata(L, sizeof *c);
  c->st = NULL;
  c->epoch = ls->epoch;
  if (luaL_newmetatable(L, STREAM_MT)) {
    lua_pushlightuserdata(L, ls);
    lua_pushcclosure(L, stream_gc, 1);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  if (!(c->st = cray__stream_new(ls->rt->store, &ls->rt->ids, t->id, backpressure)))
    cray__raise(L, "out_of_memory", "no memory for a streaming task");
  t->stream = c->st;
  t->max_retries = 0; /* a run again would stream its values again */
  return 1;
}

int cray__stream_push(lua_State *L, cray__lstate *ls, cray__task *t, lua_Number backpressure) {
  lua_pushcfunction(L, push);
  lua_pushlightuserdata(L, ls);
  lua_pushlightuserdata(L, t);
  lua_pushnumber(L, backpressure);
  if (lua_pcall(L, 3, 1, 0) != 0) {
    cray__task_release(ls->rt->store, t);
    return lua_error(L);
  }
  return 1;
}

/* stream_next(stream, done_ref) -> the next item's ref; or done_ref, true when the task
 * failed after its last item (its error); or nil, an ObjectRef to wait for before asking
 * again; or nothing once every item was taken. */
static int l_stream_next(lua_State *L) {
  cray__lstate *ls = lua_touserdata(L, lua_upvalueindex(1));
  consumer *c = luaL_checkudata(L, 1, STREAM_MT);
  cray__entry *done = cray__objref_test(L, ls, 2);
  if (!c->st || !done) return luaL_argerror(L, 2, "a stream and its task's ref");
  cray__entry *item = NULL, *news = NULL;
  /* Read before asking: once done has resolved, every item is in the stream. */
  uint32_t state = cray__entry_state(done);
  int rc = cray__stream_next(c->st, &item, &news);
  if (rc == 1) {
    cray__objref_push(L, ls, item);
    return 1;
  }
  if (rc == CRAY_ENOMEM) return cray__raise(L, "out_of_memory", "no memory to read a stream");
  if (state != CRAY__PENDING) {
    if (news) cray__store_release(ls->rt->store, news);
    if (state != CRAY__FAILED) return 0;
    lua_pushvalue(L, 2);
    lua_pushboolean(L, 1);
    return 2;
  }
  lua_pushnil(L);
  if (news) cray__objref_push(L, ls, news);
  else lua_pushvalue(L, 2);
  return 2;
}

const luaL_Reg cray__stream_functions[] = {
    {"stream_next", l_stream_next},
    {NULL, NULL},
};
