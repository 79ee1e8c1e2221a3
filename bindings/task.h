/*
 * task.h: the C functions behind remote functions (submit, cancel, sleep, the clock),
 * registered by luaopen_cray next to the store's.
 */
#ifndef CRAY_BINDINGS_TASK_H
#define CRAY_BINDINGS_TASK_H

#include <lauxlib.h>

extern const luaL_Reg cray__task_functions[];

#endif
