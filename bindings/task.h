/*
 * task.h: the C functions behind remote functions (submit, cancel, sleep, the clock),
 * registered by luaopen_cray next to the store's.
 */
#ifndef CRAY_BINDINGS_TASK_H
#define CRAY_BINDINGS_TASK_H

#include <lauxlib.h>

#include "../runtime/task.h"
#include "lstate.h"

extern const luaL_Reg cray__task_functions[];

/* The most refs one call returns: each is a value on the caller's Lua stack, and the task
 * returns as many values, with room to spare below LuaJIT's 8,000-slot limit for a C call
 * (lua/remote.lua and lua/actor.lua refuse more). */
#define CRAY__MAX_RETURNS 4096
/* The most kinds of resources one task or actor needs. */
#define CRAY__MAX_NEEDS 16

/* A task for the values at stack slots first..top as its arguments (encoded; top-level
 * ObjectRefs among them become deps, after `extra_deps` slots left for the caller), with
 * nreturns new pending return entries. Raises (leaking nothing) when an argument cannot
 * be stored or memory is short. The caller sets fn and the rest, then submits it. name is
 * copied into the task, unless `site` is not 0: then it is that site's text (sites.h),
 * which the runtime keeps, and the task points at it. */
cray__task *cray__task_build(lua_State *L, cray__lstate *ls, int first, uint32_t nreturns,
                             uint32_t extra_deps, int nres, const char *name, uint32_t site);

/* Fills need[] from the resources table at the stack top, for the task named `name`,
 * raising for a resource the runtime lacks, a need larger than it has, or more than `max`
 * kinds. Returns how many. */
int cray__check_resources(lua_State *L, struct cray__sched *s, const char *name,
                          cray__resource_need *need, int max);

struct cray__cluster;
/* Under a cluster, the same for a task placed on node (-1: anywhere), as indices into the
 * resources of the node that will run it, which it returns: node itself, else this rank
 * when it has them all, else the first rank that does. Raises naming the node and the
 * resource when node lacks one, or the resource when no node has it. *nres: how many. */
int cray__place_resources(lua_State *L, struct cray__cluster *c, int node, const char *name,
                          cray__resource_need *need, int max, int *nres);

/* Before cray__task_build: pushes the n ObjectRefs that a task's returns will fill, so
 * that nothing can raise between making the task and handing it over. Raises when they
 * do not fit on the stack with room left for a copy of every value on it. */
void cray__task_reserve_returns(lua_State *L, cray__lstate *ls, uint32_t n);
/* After: gives the refs at slots first..first+n-1 t's first n returns. Raises nothing. */
void cray__task_fill_returns(lua_State *L, cray__task *t, int first, uint32_t n);

/* Whether `node` (< 0: none asked) is another rank of the job, for the task or actor
 * (`what`) named `name`; raises when the job has no such node. */
int cray__check_node(lua_State *L, cray_runtime *rt, int node, const char *what, const char *name);

#endif
