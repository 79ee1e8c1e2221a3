/*
 * objects.h: the runtime the fuzz targets share, with two objects of fixed ids (bytes
 * 00..0f and 10..1f) that inputs may hold refs to, and a driver's Lua state on it.
 */
#ifndef CRAY_FUZZ_OBJECTS_H
#define CRAY_FUZZ_OBJECTS_H

#include <stdio.h>
#include <stdlib.h>

#include "../../bindings/driver.h"
#include "../../bindings/lstate.h"
#include "../../runtime/blob.h"
#include "../../runtime/id.h"
#include "../../runtime/runtime.h"
#include "../../runtime/store.h"

#define FUZZ_NOBJECTS 2

static cray__entry *fuzz_objects[FUZZ_NOBJECTS];

/* A runtime with a memory budget of `memory` bytes (0: the default) spilling to a fresh
 * directory, and the two fixed objects: object i is the integer i. */
static inline cray_runtime *fuzz_runtime(size_t memory) {
  cray_options o;
  cray_options_init(&o);
  o.workers = 1;
  o.memory = memory;
  cray_runtime *rt = NULL;
  if (cray_open(&rt, &o) != 0) {
    fprintf(stderr, "fuzz: cannot open a runtime\n");
    exit(2);
  }
  for (int i = 0; i < FUZZ_NOBJECTS; i++) {
    uint8_t raw[16], value = (uint8_t)i;
    for (int k = 0; k < 16; k++) raw[k] = (uint8_t)(16 * i + k);
    cray__blob *b = cray__blob_new(&value, 1, 1, NULL, 0, 0);
    fuzz_objects[i] = b ? cray__store_insert(rt->store, cray__id_load(raw), b) : NULL;
    if (!fuzz_objects[i]) exit(2);
  }
  return rt;
}

/* A runtime of the default budget, made into *rt, and a driver's Lua state on it. */
static inline lua_State *fuzz_driver(cray_runtime **rt) {
  char *err = NULL;
  *rt = fuzz_runtime(0);
  lua_State *L = cray__driver_new(*rt, &err);
  if (!L) {
    fprintf(stderr, "fuzz: %s\n", err);
    exit(2);
  }
  return L;
}

/* LeakSanitizer does not scan LuaJIT's heap, which holds the state's cray__lstate: the
 * buffers it keeps from one encode to the next are kept visible here instead, or every
 * input that grows one would be reported as a leak. */
static void *volatile fuzz_lstate_buffers[3]; /* volatile: never read, yet kept */

static inline void fuzz_keep_buffers(const cray__lstate *ls) {
  fuzz_lstate_buffers[0] = ls->scratch.data;
  fuzz_lstate_buffers[1] = (void *)ls->refs;
  fuzz_lstate_buffers[2] = (void *)ls->splices;
}

#endif
