/*
 * fuzz.h: what every fuzz target of spec/fuzz/ defines, and its one assertion.
 *
 * A target is a libFuzzer entry point: LLVMFuzzerInitialize sets up once (a runtime, a
 * Lua state), LLVMFuzzerTestOneInput runs one input and must neither crash nor leak nor
 * break a promise. `make fuzz` links the targets with libFuzzer; every build also links
 * them with replay.c, which runs the kept inputs of spec/fuzz/<target>/ once each, so the
 * seeds and every finding are regression cases of `make test`.
 */
#ifndef CRAY_FUZZ_H
#define CRAY_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken promise: abort, so libFuzzer keeps the input and replay fails. */
#define FUZZ_CHECK(cond)                                                          \
  do {                                                                            \
    if (!(cond)) {                                                                \
      fprintf(stderr, "%s:%d: promise broken: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                    \
    }                                                                             \
  } while (0)

#endif
