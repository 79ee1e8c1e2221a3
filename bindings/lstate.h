/*
 * lstate.h: what cray keeps per lua_State (the driver's or, later, a worker's).
 *
 * One cray__lstate lives as a userdata in each state's registry, created by luaopen_cray.
 * It points at the runtime the state talks to and owns the codec's scratch space, reused
 * across calls so that a small put allocates nothing here. Only its own state's thread
 * touches it.
 *
 * Registry keys shared by the binding's files (all set by luaopen_cray):
 */
#ifndef CRAY_LSTATE_H
#define CRAY_LSTATE_H

#include <lua.h>
#include <stdint.h>

#include "../runtime/wire.h"
#include "../runtime/runtime.h"

#define CRAY__REG_LSTATE "cray.lstate"     /* the cray__lstate userdata */
#define CRAY__REG_OBJREF_MT "cray.ObjectRef" /* metatable of ObjectRef userdata */
#define CRAY__REG_ERROR_MT "cray.Error"    /* metatable of error objects */
#define CRAY__REG_CLASSES "cray.classes"   /* name -> metatable and metatable -> name */
#define CRAY__REG_CNAMES "cray.cnames"     /* C function -> "lib.name" and back */
#define CRAY__REG_FFI "cray.ffi"           /* table of FFI helpers from lua/ffi_codec.lua */
#define CRAY__REG_WORKER "cray.worker"     /* set before luaopen_cray in a worker's state */
#define CRAY__REG_STORED "cray.stored"     /* id -> function or class decoded from the store */

/* A stretch of bytes the encoder leaves in place: it goes into the blob at ls->scratch
 * offset `at`, copied straight from the Lua value (codec.h, CRAY__SPLICE_MIN). */
typedef struct cray__splice {
  size_t at;
  const void *src;
  size_t len;
} cray__splice;

#define CRAY__DROPPED_MAX 256 /* ObjectRefs a state's finalizer releases at once */

/* Call specs kept per state, two to a set (bindings/actor.c): a power of two. A spec is
 * one table for each content in a state (lua/actor.lua), so this is the number of
 * distinct methods and options a state calls in turn without reading a spec again. */
#define CRAY__CALL_SPECS 256

typedef struct cray__lstate cray__lstate;
struct cray__lstate {
  cray_runtime *rt; /* NULL until cray.init; borrowed from the module's process runtime */
  unsigned epoch;   /* rt->ids.epoch when rt was set: refs made under another are stale */
  int objref_mt;    /* registry reference of the ObjectRef metatable */
  const void *objref_mt_ptr; /* its address, to recognise it without a look-up */
  unsigned objref_epoch; /* the epoch it was made for: refs are live while it is `epoch` */
  int owns_rt;      /* rt is the process runtime this state opened: closing L closes it */
  void *worker;     /* in a worker's state, the executor's worker (bindings/executor.c) */
  cray__buf scratch; /* encoder output, reset per encode: not the whole blob (the
                      * splices go between), which cray__codec_blob makes */
  cray__entry **refs; /* entries of the ObjectRefs the last encode met, in order; borrowed */
  uint32_t nrefs, refs_cap;
  cray__splice *splices; /* large strings and arrays of the last encode, in order */
  uint32_t nsplices, splices_cap;
  size_t spliced;   /* their bytes */
  size_t gc_debt;   /* bytes of blobs put since the Lua GC was last told of them */
  /* Entries of small values whose ObjectRefs the Lua GC finalized, each with the reference
   * the ref held, released together (objref.c): flushed when full, by every call into
   * cray from this state, after each run of a task in a worker, and when the state binds
   * to another runtime or none. */
  cray__entry *dropped[CRAY__DROPPED_MAX];
  uint32_t ndropped;
  /* The call specs of the actor methods this state called last (bindings/actor.c), each
   * read from its table once; the registry table call_specs_ref (0 until made) keeps
   * those tables, so no other table takes one's address while it is here. */
  struct cray__call_spec {
    const void *table; /* lua/actor.lua never changes a call spec it made */
    unsigned epoch;    /* ls->epoch when read: the site is that runtime's */
    int num_returns, method_at;
    uint32_t site;     /* the call's name, interned in the runtime's sites */
    const char *name;  /* the site's text */
  } call_specs[CRAY__CALL_SPECS];
  int call_specs_ref;
  /* The spec of the actor class this state made an actor of last (bindings/actor.c), read
   * from its table once that table is complete (no_init known); the registry reference
   * new_spec_ref keeps the table, so no other table takes its address while it is here. */
  struct cray__new_spec {
    const void *table; /* NULL: none kept */
    const char *name, *class_name, *init_name; /* the table's strings; name NULL: unnamed */
    int get_if_exists, max_restarts, max_task_retries, max_concurrency, max_pending_calls;
    int restart_on_error, node;
    int resources; /* the table has resources, read again at each creation */
    int no_init;   /* 1 or 0; -1 while lua/actor.lua has not learnt it */
  } new_spec;
  int new_spec_ref;
  /* In a worker's state, the executor's wait (bindings/executor.c): arms a wait for `want`
   * of entries[0..n) (n == 0: a sleep) until `deadline` (monotonic seconds, < 0: none)
   * and returns 1 when the caller must `return lua_yield(L, 0)`; raises when L cannot
   * yield (`yieldable` is what coroutine.isyieldable() said, `fn` names the caller). NULL
   * in the driver's state, whose waits block the thread. */
  int (*wait)(lua_State *L, cray__lstate *ls, cray__entry *const *entries, size_t n,
              size_t want, double deadline, int yieldable, const char *fn);
};

/* ls->wait when the state has one: 1 when the caller must yield, 0 when it blocks. */
static inline int cray__lstate_wait(lua_State *L, cray__lstate *ls, cray__entry *const *entries,
                                    size_t n, size_t want, double deadline, int yieldable,
                                    const char *fn) {
  return ls->wait ? ls->wait(L, ls, entries, n, want, deadline, yieldable, fn) : 0;
}

/* The state's cray__lstate (luaopen_cray must have run in L). */
cray__lstate *cray__lstate_get(lua_State *L);

/* cray's own Lua chunks (the modules in lua/, built with this chunk name, and the executor's
 * trampoline) start their source with this: messages point past them at the user's code. */
#define CRAY__CHUNK_PREFIX "=[cray"

/* The first stack level, from `level` up, that is not in one of cray's chunks, when it
 * runs Lua code with line information: the user's line that called cray. 0 when there is
 * none, or when that frame is a C function (pcall(cray.get, x) has no line of its own, as
 * error(msg, 2) has none there). */
int cray__user_level(lua_State *L, int level);

/* Replaces the traceback string on top of L with one without the frames of cray's chunks
 * (and the C functions they called); "" when no frame is left. */
void cray__traceback_clean(lua_State *L);

/* Pushes how a message shows the value at idx and returns it: numbers as numbers ("nan",
 * "inf", "70000"), strings quoted (cut after 40 bytes), booleans and nil as themselves,
 * cray's values by what they are ("an actor handle", "an ObjectRef"), tables of
 * registered classes by their class, anything else by its type ("a table"). */
const char *cray__describe(lua_State *L, int idx);

/* Pushes a new error object: {kind = kind, message = msg} with the error metatable; the
 * message starts with the position of the user's code that called cray (cray__user_level),
 * and the traceback starts there. */
void cray__error_push(lua_State *L, const char *kind, const char *msg);
/* Raises a new error object of `kind` with a printf-style message. Never returns. */
int cray__raise(lua_State *L, const char *kind, const char *fmt, ...);

#endif
