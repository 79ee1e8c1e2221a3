/*
 * io_exec.h: a subprocess as an io op (runtime/io.h): started with uv_spawn on the loop,
 * fed its input, its output and error output collected, waited for.
 */
#ifndef CRAY_IO_EXEC_H
#define CRAY_IO_EXEC_H

#include <stddef.h>

#include "io.h"

typedef struct cray__exec_spec {
  const char *const *argv; /* NULL-terminated; argv[0] is looked up in PATH */
  const char *input;       /* NULL: the child's stdin is /dev/null */
  size_t input_len;
  const char *cwd;         /* NULL: the caller's */
  const char *const *env;  /* "NAME=value", NULL-terminated; NULL: the caller's */
  double timeout;          /* seconds; < 0: none. Then the child is killed (SIGKILL) */
} cray__exec_spec;

/* An op running spec (everything copied). NULL when memory is short. It completes with 0
 * once the child exited and its output is read, or with why it could not start. */
cray__io_op *cray__exec_op(cray__io *io, const cray__exec_spec *spec);

typedef struct cray__exec_result {
  const char *out, *err;   /* valid while the op lives */
  size_t out_len, err_len;
  int status;              /* the exit status, or 128 + the signal that ended it */
  int timed_out;           /* it was killed when the timeout passed */
} cray__exec_result;

void cray__exec_result_of(cray__io_op *op, cray__exec_result *out);

#endif
