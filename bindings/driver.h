/*
 * driver.h: a LuaJIT state set up as a cray driver, and running chunks in it.
 *
 * Used by crayrun and by the C API's cray_run_string/cray_run_file: the state has the
 * standard libraries, `cray` loaded as the global `cray`, and uncaught errors come back
 * as one message with a traceback (a cray error object prints its own).
 */
#ifndef CRAY_DRIVER_H
#define CRAY_DRIVER_H

#include <lua.h>

#include "../runtime/cray.h"

/* A new state with cray loaded; when rt is not NULL the state runs on it (the caller
 * keeps ownership). NULL when memory is short or cray fails to load (*err, when not
 * NULL, is then a malloc'd message). */
lua_State *cray__driver_new(cray_runtime *rt, char **err);

/* Calls the function below its nargs arguments on the stack, with a traceback on error.
 * Returns 0, or 1 with the error message (a string) on the stack. */
int cray__driver_pcall(lua_State *L, int nargs);

/* The scheduler of the state's runtime, started now if it was not: for a rank that runs
 * other ranks' tasks before its driver submits any. NULL when it cannot start. */
struct cray__sched *cray__driver_sched(lua_State *L);

#endif
