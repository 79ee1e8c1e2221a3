/*
 * lio.h: the C functions behind cray.tcp, cray.fs and cray.exec (bindings/lio.c), which
 * lua/io.lua wraps.
 */
#ifndef CRAY_LIO_H
#define CRAY_LIO_H

#include <lauxlib.h>

extern const luaL_Reg cray__io_functions[];

#endif
