/*
 * cray.h: the public C interface of cray.
 *
 * cray runs Ray's programming model (tasks, actors, an object store of immutable values
 * addressed by 128-bit ids) in one process, scripted in LuaJIT. This header is all an
 * embedding C program needs: open a runtime, hand it MessagePack blobs and read them
 * back, call Lua functions and actors, offer C functions as tasks, and run Lua drivers.
 * docs/c-api.md is the guide; docs/format.md the MessagePack extension types.
 *
 * Conventions
 * - Every function that can fail returns 0 or a negative CRAY_E* code; cray_strerror()
 *   and cray_err_name() describe a code. A failed call has no effect.
 * - A NULL pointer where a pointer is required is CRAY_EINVAL, never a crash; so are
 *   malformed names. Functions that return nothing ignore NULL.
 * - Every pointer that crosses this interface says who owns it and until when. Strings
 *   passed in are copied when the call keeps them; the caller keeps ownership.
 * - A cray_runtime may be used from any number of threads at once, registered C functions
 *   (which run on worker threads) included, until cray_close, which must be the last
 *   call on it and must not run on a worker thread.
 * - Ids handed out (cray_put, cray_call, cray_actor_create, cray_actor_call) each carry
 *   one reference that the caller owns and drops with cray_release. cray_release drops
 *   only those: never a reference that objects nesting the id, or tasks, hold.
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
#define CRAY_VERSION_MINOR 2
#define CRAY_VERSION_PATCH 0
#define CRAY_VERSION_STRING "0.2.0"

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
/* Reads an id written by cray_id_format (or Lua's ref:hex()): exactly 32 hex digits,
 * either case, then the end of the string. 0 or CRAY_EINVAL. Thread-safe, no runtime. */
CRAY_API int cray_id_parse(const char *hex, cray_id *id);

/* The library's version, "MAJOR.MINOR.PATCH" (a static string): the one it was built
 * as, which may differ from the CRAY_VERSION_STRING a program was compiled with. */
CRAY_API const char *cray_version(void);

typedef struct cray_runtime cray_runtime;

/* Options of cray_open. Initialise with cray_options_init, then set what you need.
 * Strings are copied by cray_open; the caller keeps ownership of what it passes.
 * The struct carries its own size, which cray_options_init sets: fields added in later
 * versions go at the end, and cray_open reads only the fields a caller's size covers
 * (the others keep their defaults), so a program built against an older cray.h keeps
 * working with a newer library. A size that covers fewer fields than this first
 * version's is CRAY_EINVAL. */
typedef struct cray_options {
  size_t size;                  /* sizeof(cray_options) as the caller was compiled */
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
  /* Since 0.2: */
  const char *lua_path;         /* package.path of worker states; NULL: the driver's that
                                   starts the workers, else LuaJIT's ($LUA_PATH) */
  const char *lua_cpath;        /* package.cpath likewise */
  size_t task_memory;           /* Lua heap share of one task or actor call in a worker
                                   state; 0: half of worker_memory (none without it) */
  int tag_output;               /* nonzero: each line `print` writes in a task or actor
                                   call starts with "(its name wN) " */
} cray_options;

/* The smallest worker_memory a worker's Lua state with cray loaded fits in. */
#define CRAY_WORKER_MEMORY_MIN ((size_t)1 << 20)

/* Sets every option to its default and opts->size to sizeof(cray_options). */
CRAY_API void cray_options_init(cray_options *opts);

/* Parses a size: a number with an optional K, M, G or T suffix (powers of 1024, an
 * optional B after it), as in "512M" or "1.5G". 0 or CRAY_EINVAL. */
CRAY_API int cray_parse_size(const char *s, size_t *out);

/* Opens a runtime. On success *out owns it until cray_close(*out). CRAY_EINVAL when out
 * is NULL or an option is out of range (nresources above 0 with a NULL array among
 * them). */
CRAY_API int cray_open(cray_runtime **out, const cray_options *opts);
/* Closes a runtime and frees every object in it. rt must not be used afterwards. Tasks
 * that still run $CRAY_STOP_TIMEOUT seconds (default 5) after it began make it give up:
 * it names them on stderr, removes the spill directory and returns, leaving the
 * runtime's memory and threads to the process (docs/c-api.md). */
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

/* Drops one reference that cray_put (or cray_call, cray_actor_create, cray_actor_call)
 * gave. CRAY_ENOTFOUND when the object is gone; CRAY_EINVAL when every reference handed
 * out for it was dropped already: the object may live on, held by others (an object that
 * nests it), and their references are left alone. */
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
  uint64_t peak_bytes;      /* the most bytes held in memory at once, to 16 KiB per shard */
} cray_store_stats;

CRAY_API void cray_store_stats_get(cray_runtime *rt, cray_store_stats *out);

/* Runs Lua source (chunk name `name`) or a file as a driver on rt, in a fresh LuaJIT state
 * with the standard libraries and `cray` loaded. On a Lua error returns CRAY_ELUA and, when
 * err is not NULL, sets *err to a malloc'd message with its traceback (caller frees). */
CRAY_API int cray_run_string(cray_runtime *rt, const char *code, const char *name, char **err);
CRAY_API int cray_run_file(cray_runtime *rt, const char *path, char **err);

/* ---- Tasks and actors from C ----
 *
 * Arguments are one MessagePack array whose elements are the arguments, as a Lua caller
 * would pass them; cray's extension types are allowed (docs/format.md). An ObjectRef at
 * the top level of the array stands for its object's first value: the task waits until it
 * is ready (and fails, with that error as its cause, when it failed). Refs nested deeper
 * arrive as refs. Every ref must name an object that exists (CRAY_ENOTFOUND otherwise).
 * The bytes are copied; the caller keeps them. Bytes from C are untrusted: a Lua function
 * inside them is never loaded: the task fails (kind "task_error") with a cause of kind
 * "serialization" that says so.
 *
 * Each call returns at once; *result is the id of one object that will hold every value
 * the function returned (cray_get's view has `count` of them), or the task's error
 * object (cray_get returns CRAY_EOBJERROR; read it with cray_error_info). The caller holds
 * one reference to *result and drops it with cray_release.
 *
 * Errors of the call itself: CRAY_EINVAL (a NULL, a name that is not "module.name" or
 * "c.NAME"), CRAY_EBADBLOB (args not exactly one well-formed MessagePack array),
 * CRAY_ENOTFOUND (a ref inside that names no object, an unregistered "c.NAME", an actor
 * id that names no actor), CRAY_ECLOSED (the runtime is shutting down), CRAY_ENOMEM.
 * A Lua function or class that does not exist is found out by the worker that runs it:
 * the result (or the actor's calls) fail with an error object that says which.
 * All three may be called from any thread, worker threads included. */

/* Calls `function`: "module.fn" (a function of a Lua module, found with require on the
 * worker that runs it) or "c.NAME" (a C function registered with cray_register). */
CRAY_API int cray_call(cray_runtime *rt, const char *function, const void *args, size_t len,
                       cray_id *result);

/* Creates an actor of class "module.Class" (a table of methods in a Lua module), whose
 * init method (if any) runs first with args. *actor is the actor's id; the caller holds
 * one reference (cray_release): the actor lives while references to it do (any Lua
 * handle or stored value that holds it counts too). A class that does not exist or an
 * init that raises kills the actor: its calls fail with kind "actor_died" and the init
 * error as cause. */
CRAY_API int cray_actor_create(cray_runtime *rt, const char *cls, const void *args,
                               size_t len, cray_id *actor);

/* Calls method `method` of the actor: calls from one thread run in the order sent.
 * CRAY_ENOTFOUND when *actor names no object, CRAY_EINVAL when it names an object that
 * is not an actor. A method that does not exist fails the call (kind "task_error"). */
CRAY_API int cray_actor_call(cray_runtime *rt, const cray_id *actor, const char *method,
                             const void *args, size_t len, cray_id *result);

/* ---- C functions as tasks ---- */

/* Where a C function writes its results. Owned by the runtime, valid only during the call
 * it was passed to, and only on that call's thread. */
typedef struct cray_buffer cray_buffer;

/* Appends data[0..len) (copied): one or more whole MessagePack values, the function's
 * results in order. The runtime checks them when the function returns. 0, CRAY_EINVAL
 * (a NULL) or CRAY_ENOMEM. */
CRAY_API int cray_buffer_append(cray_buffer *out, const void *data, size_t len);

/* A C function run as a task. args[0..len) is a MessagePack array of the arguments
 * (top-level ObjectRefs replaced by their objects' first values), valid during the call.
 * It appends its results to out and returns 0, or returns a negative code (any, a
 * CRAY_E* one or its own) to fail the task with kind "task_error" and a message naming
 * the code. It runs on a worker thread, possibly on several at once: ud is shared.
 * It may call cray_put, cray_get, cray_call and the actor functions on the runtime;
 * a cray_get there runs other tasks on this worker while it waits, so nested calls do
 * not starve the pool. It must not call cray_close. */
typedef int (*cray_cfunction)(void *ud, const uint8_t *args, size_t len, cray_buffer *out);

/* Registers fn as "c.NAME": cray_call(rt, "c.NAME", ...) from C,
 * cray.remote("c.NAME").remote(...) from Lua. name is letters, digits and '_' (copied).
 * Registering a name again replaces its function for tasks that start afterwards.
 * ud is the caller's; it must stay valid until cray_close. 0, CRAY_EINVAL or
 * CRAY_ENOMEM. */
CRAY_API int cray_register(cray_runtime *rt, const char *name, cray_cfunction fn, void *ud);

/* ---- Error objects ---- */

/* The parts of an error object. Strings are NUL-terminated and live as long as the view
 * they were read from (until cray_view_release); a part the error lacks is NULL. */
typedef struct cray_error {
  const char *kind;       /* "task_error", "actor_died", "cancelled", "serialization", ... */
  const char *message;
  const char *traceback;  /* the remote Lua traceback */
  const char *task;       /* the name of the task that failed */
  const char *cause_kind; /* the kind of the error it propagated from */
} cray_error;

/* Reads the error object that a view's first value holds (a view that cray_get filled
 * and returned CRAY_EOBJERROR for, or any value that is a cray error extension).
 * 0, CRAY_EINVAL (a NULL, a released view, or a first value that is not an error
 * object) or CRAY_ENOMEM. Thread-safe; the view stays the caller's. */
CRAY_API int cray_error_info(const cray_view *v, cray_error *out);

#ifdef __cplusplus
}
#endif
#endif
