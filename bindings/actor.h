/*
 * actor.h: the C functions behind actors (create, call, kill, monitor, self, exit,
 * get_actor), registered by luaopen_cray next to the store's.
 */
#ifndef CRAY_BINDINGS_ACTOR_H
#define CRAY_BINDINGS_ACTOR_H

#include <lauxlib.h>

extern const luaL_Reg cray__actor_functions[];

#endif
