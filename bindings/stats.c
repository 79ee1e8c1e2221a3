/*
 * stats.c: the per-function part of cray.stats() (runtime/fstats.h as Lua tables).
 *
 * Adds to the table on top of the stack: functions = {[name] = {calls, failed, retries,
 * ran, total, mean, p50, p99, queued, deps}} (times in seconds), actors.created / restarted /
 * died / moved, busy = {fraction of the run each worker spent running tasks} and elapsed.
 */
#include "stats.h"

#include <lauxlib.h>

#include "../runtime/fstats.h"

static void set_num(lua_State *L, const char *k, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, k);
}

void cray__stats_push(lua_State *L, cray__sched *s) {
  cray__fstats_report r = {0}; /* nothing ran yet (no scheduler) or no memory: empty */
  if (s && cray__fstats_read(cray__sched_fstats(s), &r) != 0) r = (cray__fstats_report){0};
  lua_createtable(L, 0, (int)r.nfns);
  for (size_t i = 0; i < r.nfns; i++) {
    const cray__fstats_fn *f = &r.fns[i];
    lua_createtable(L, 0, 10);
    set_num(L, "calls", (double)f->calls);
    set_num(L, "failed", (double)f->failed);
    set_num(L, "retries", (double)f->retries);
    set_num(L, "ran", (double)f->ran);
    set_num(L, "total", f->total);
    set_num(L, "mean", f->mean);
    set_num(L, "p50", f->p50);
    set_num(L, "p99", f->p99);
    set_num(L, "queued", f->queued);
    set_num(L, "deps", f->deps);
    lua_setfield(L, -2, f->name);
  }
  lua_setfield(L, -2, "functions");
  lua_getfield(L, -1, "actors");
  set_num(L, "created", (double)r.actors[CRAY__ACTOR_CREATED]);
  set_num(L, "restarted", (double)r.actors[CRAY__ACTOR_RESTARTED]);
  set_num(L, "died", (double)r.actors[CRAY__ACTOR_DIED]);
  set_num(L, "moved", (double)r.actors[CRAY__ACTOR_MOVED]);
  lua_pop(L, 1);
  lua_createtable(L, r.workers, 0);
  for (int i = 0; i < r.workers; i++) {
    lua_pushnumber(L, r.busy[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "busy");
  set_num(L, "elapsed", r.elapsed);
  cray__fstats_report_free(&r);
}
