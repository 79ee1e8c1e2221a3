/*
 * stats.h: the per-function part of cray.stats() (bindings/stats.c).
 */
#ifndef CRAY_BINDINGS_STATS_H
#define CRAY_BINDINGS_STATS_H

#include <lua.h>

#include "../runtime/sched.h"

/* Adds functions, actors.created/restarted/died, busy and elapsed to the cray.stats()
 * table on top of L's stack (which has an `actors` table); empty ones when s is NULL
 * (the scheduler starts with the first task). */
void cray__stats_push(lua_State *L, cray__sched *s);

#endif
