/*
 * cray.h: the public C interface of cray.
 *
 * cray runs Ray's programming model (tasks, actors, an object store of immutable values
 * addressed by 128-bit ids) in one process, scripted in LuaJIT. This header is all an
 * embedding C program needs: open a runtime, hand it MessagePack blobs, read them back,
 * and run Lua drivers on it.
 *
 * Conventions
 * - Every function that can fail returns 0 or a negative CRAY_E* code; cray_strerror()
 *   and cray_err_name() describe a code. A failed call has no effect.
 * - Every pointer that crosses this interface says who owns it and until when.
 * - A cray_runtime may be used from any number of threads at once.
 */
#ifndef CRAY_H
#define CRAY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define CRAY_API __attribute__((visibility("default")))
#else
#define CRAY_API
#endif

#define CRAY_VERSION_MAJOR 0
#define CRAY_VERSION_MINOR 1
#define CRAY_VERSION_PATCH 0
#define CRAY_VERSION_STRING "0.1.0"

/* Error codes: XX(name, message). Codes are negative and stable. */
#define CRAY_ERRNO_MAP(XX)                                                  \
  XX(INVAL, -1, "invalid argument")                                         \
  XX(NOMEM, -2, "out of memory")                                            \
  XX(TIMEDOUT, -3, "timed out")                                             \
  XX(NOTFOUND, -4, "no such object")                                        \
  XX(BADBLOB, -5, "malformed or truncated MessagePack blob")                \
  XX(OBJERROR, -6, "the object holds an error")                             \
  XX(CLOSED, -7, "the runtime is shut down")                                \
  XX(SYS, -8, "system call failed")                                         \
  XX(LUA, -9, "Lua error")                                                  \
  XX(DEADLOCK, -10, "deadlock: nothing can make progress")

enum {
#define CRAY__ERR_ENUM(name, code, msg) CRAY_E##name = (code),
  CRAY_ERRNO_MAP(CRAY__ERR_ENUM)
#undef CRAY__ERR_ENUM
};

/* A static string describing err; "unknown error" for a code not in the table. */
CRAY_API const char *cray_strerror(int err);
/* The code's name ("CRAY_ETIMEDOUT"); "CRAY_EUNKNOWN" for a code not in the table. */
CRAY_API const char *cray_err_name(int err);

/* An object id: 128 bits, unique for the life of the process. */
typedef struct cray_id {
  uint64_t hi, lo;
} cray_id;

/* Writes the id as 32 lowercase hex digits and a NUL into buf[33]. */
CRAY_API void cray_id_format(const cray_id *id, char buf[33]);

typedef struct cray_runtime cray_runtime;

/* Options of cray_open. Initialise with cray_options_init, then set what you need.
 * Strings are copied by cray_open; the caller keeps ownership of what it passes. */
typedef struct cray_options {
  int workers;                  /* worker threads; 0: the number of online CPUs */
  size_t memory;                /* object store budget in bytes; 0: 30% of physical memory */
  const char *spill_dir;        /* NULL: a fresh directory under $TMPDIR */
  size_t spill_max;             /* bytes of disk for spilled objects; 0: no cap */
  size_t worker_memory;         /* Lua heap limit per worker state; 0: no limit; else at
                                 * least CRAY_WORKER_MEMORY_MIN */
  int nresources;               /* custom resources: names[i] (non-empty) has counts[i]
                                 * units (a finite number >= 0) */
  const char *const *resource_names;
  const double *resource_counts;
} cray_options;

/* The smallest worker_memory a worker's Lua state with cray loaded fits in. */
#define CRAY_WORKER_MEMORY_MIN ((size_t)1 << 20)

CRAY_API void cray_options_init(cray_options *opts);

/* Parses a size: a number with an optional K, M, G or T suffix (powers of 1024, an
 * optional B after it), as in "512M" or "1.5G". 0 or CRAY_EINVAL. */
CRAY_API int cray_parse_size(const char *s, size_t *out);

/* Opens a runtime. On success *out owns it until cray_close(*out). */
CRAY_API int cray_open(cray_runtime **out, const cray_options *opts);
/* Closes a runtime and frees every object in it. rt must not be used afterwards. */
CRAY_API void cray_close(cray_runtime *rt);

/* Stores a copy of the MessagePack value at data[0..len) (exactly one value; cray
 * extension types allowed, see docs/format.md). *id receives its id and the caller holds
 * one reference to it, dropped with cray_release. ObjectRefs inside must name objects
 * that exist (CRAY_ENOTFOUND otherwise). Lua functions inside are never loaded from a
 * blob put through this call. */
CRAY_API int cray_put(cray_runtime *rt, const void *data, size_t len, cray_id *id);

/* A read-only view of a stored blob: data[0..len) holds `count` MessagePack values.
 * Valid until cray_view_release, which must come before cray_close; the object itself
 * may be released meanwhile. */
typedef struct cray_view {
  const uint8_t *data;
  size_t len;
  uint32_t count;
  void *owner; /* private */
} cray_view;

/* Waits up to timeout seconds (< 0: forever) for the object and fills *view.
 * CRAY_ETIMEDOUT when it is still pending; CRAY_EDEADLOCK when, waiting forever, nothing in
 * the runtime can make progress towards it (every worker idle, no timer pending, no other thread
 * waiting); CRAY_OBJERROR when the object is an error, in which case *view holds the
 * error object (a cray error extension value). */
CRAY_API int cray_get(cray_runtime *rt, const cray_id *id, double timeout, cray_view *view);
CRAY_API void cray_view_release(cray_runtime *rt, cray_view *view);

/* Drops one reference that cray_put gave. */
CRAY_API int cray_release(cray_runtime *rt, const cray_id *id);

/* Object store counters. */
typedef struct cray_store_stats {
  uint64_t objects;         /* objects held, pending ones included */
  uint64_t bytes;           /* bytes of blobs held in memory */
  uint64_t budget;          /* the memory budget in bytes */
  uint64_t spilled_objects; /* objects on disk */
  uint64_t spilled_bytes;   /* bytes on disk */
  uint64_t restored_objects;/* objects read back from disk so far */
  uint64_t puts;            /* objects created so far */
  uint64_t frees;           /* objects freed so far */
} cray_store_stats;

CRAY_API void cray_store_stats_get(cray_runtime *rt, cray_store_stats *out);

/* Runs Lua source (chunk name `name`) or a file as a driver on rt, in a fresh LuaJIT state
 * with the standard libraries and `cray` loaded. On a Lua error returns CRAY_ELUA and, when
 * err is not NULL, sets *err to a malloc'd message with its traceback (caller frees). */
CRAY_API int cray_run_string(cray_runtime *rt, const char *code, const char *name, char **err);
CRAY_API int cray_run_file(cray_runtime *rt, const char *path, char **err);

#ifdef __cplusplus
}
#endif
#endif
