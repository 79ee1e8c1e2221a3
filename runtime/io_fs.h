/*
 * io_fs.h: file system calls as io ops (runtime/io.h), run on libuv's thread pool.
 *
 * Each op does one whole call (a file read whole, a directory listed) in a pool thread
 * with plain POSIX calls, so a task waits once per call. When the op completed with an
 * error, cray__fs_error says which path and which system error (op->result is the
 * negative libuv code).
 */
#ifndef CRAY_IO_FS_H
#define CRAY_IO_FS_H

#include <stddef.h>
#include <stdint.h>

#include "io.h"

enum {
  CRAY__FS_READ,   /* path -> its bytes */
  CRAY__FS_WRITE,  /* path, data: the file is made or replaced */
  CRAY__FS_APPEND, /* path, data: added at its end (made when missing) */
  CRAY__FS_STAT,   /* path -> cray__fs_stat */
  CRAY__FS_LIST,   /* path -> the names in the directory, but . and .., sorted */
  CRAY__FS_REMOVE, /* path: a file or an empty directory */
  CRAY__FS_RENAME, /* path -> path2 */
};

typedef struct cray__fs_stat {
  uint64_t size;
  double mtime;    /* seconds since the epoch */
  unsigned mode;   /* permission bits */
  const char *type; /* "file", "directory", "link" or "other" */
} cray__fs_stat;

/* An op of `kind` on path (and path2 or data, as the kind needs; copied). NULL when
 * memory is short. */
cray__io_op *cray__fs_op(cray__io *io, int kind, const char *path, const char *path2,
                         const char *data, size_t len);
/* After completion with 0: the bytes read (READ), or the names, each NUL-terminated, one
 * after the other (LIST: *count of them). Valid while the op lives. */
const char *cray__fs_bytes(cray__io_op *op, size_t *len, size_t *count);
const cray__fs_stat *cray__fs_stat_of(cray__io_op *op);
/* After completion with an error: the path the system call failed on. */
const char *cray__fs_error_path(cray__io_op *op);

#endif
