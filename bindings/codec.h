/*
 * codec.h: Lua values <-> MessagePack blobs, in one pass each way (docs/format.md).
 *
 * Encoding walks the values with the Lua API and writes MessagePack into the state's
 * scratch buffer; ObjectRefs met on the way are listed in order so the blob can hold
 * them. Strings and FFI arrays of CRAY__SPLICE_MIN bytes or more are not copied there:
 * the encoder notes where their bytes go (ls->splices) and cray__codec_blob copies them
 * once, from the Lua value straight into the blob. Refusals raise an error object of
 * kind "serialization" whose message names the path to the value, as in
 * "args[2].conn: cannot serialize userdata". Nothing is allocated outside the reused
 * scratch space, so a raised error leaks nothing.
 *
 * Decoding pushes the values of a blob. It checks every length against the bytes left,
 * so malformed or truncated blobs raise a "serialization" error, never a fault. Lua
 * bytecode is loaded only from blobs marked CRAY__BLOB_TRUSTED. An FFI array comes back
 * as a *view*: a read-only cdata (cray_view_<type>, lua/ffi_codec.lua) pointing at the
 * elements inside the blob, holding a blob reference that its finalizer drops, so the
 * bytes live as long as the view does and are never copied.
 */
#ifndef CRAY_CODEC_H
#define CRAY_CODEC_H

#include <lua.h>

#include "../runtime/blob.h"
#include "lstate.h"

/* Deepest nesting of tables, functions and extension payloads, both ways. */
#define CRAY__CODEC_MAX_DEPTH 128

/* Strings and FFI arrays this big or bigger are spliced rather than copied twice. */
#define CRAY__SPLICE_MIN 4096

/* Encodes the n values at stack slots first..first+n-1 into ls->scratch, ls->splices (both
 * reset first) and ls->refs. `root` names them in error paths: with n == 1 the value is
 * `root` ("value"), with n > 1 the i-th is `root[i]` ("args[2]"). Raises on refusal. */
void cray__codec_encode(lua_State *L, cray__lstate *ls, int first, int n, const char *root);

/* The size of the blob the last encode makes. */
static inline size_t cray__codec_len(const cray__lstate *ls) {
  return ls->scratch.len + ls->spliced;
}

/* The blob of the last encode, with its refs, big ones from s's cray__bigmem (s may be
 * NULL); NULL when memory is short. The encoded values must still be on the Lua stack,
 * unchanged: spliced bytes are read from them here. Frees a scratch buffer grown big. */
cray__blob *cray__codec_blob(cray__lstate *ls, cray__store *s, uint32_t count, uint32_t flags);

/* Room for len bytes of new values in ls's store: cray__store_reserve, which may wait for
 * the spill thread. Raises out_of_memory, naming `fn` and what is full, when there is
 * none. */
void cray__codec_reserve(lua_State *L, cray__lstate *ls, size_t len, const char *fn);

/* cray__codec_blob for a value of ls's store, trusted, after cray__codec_reserve. Raises
 * out_of_memory, naming `fn`, when the store has no room or memory is short. */
cray__blob *cray__codec_store_blob(lua_State *L, cray__lstate *ls, uint32_t count,
                                   const char *fn);

/* Pushes the first `max` values of b (all of them when max < 0); returns how many it
 * pushed. Raises on malformed input. Views of b's FFI arrays take references to b. */
int cray__codec_decode(lua_State *L, cray__lstate *ls, cray__blob *b, int max);

/* Pins the blob of e, a resolved entry of ls's store, reading it back from disk if it was
 * spilled (cray__store_pin; the caller unpins); raises, naming `fn`, when it cannot. */
cray__blob *cray__codec_pin(lua_State *L, cray__lstate *ls, cray__entry *e, const char *fn);

/* cray__codec_decode of e's blob, pinned meanwhile. */
int cray__codec_decode_entry(lua_State *L, cray__lstate *ls, cray__entry *e, int max,
                             const char *fn);

/* Pushes a task's arguments, the values of b, except that an ObjectRef at the top level
 * stands for the first value of its object (which must be ready); returns how many. */
int cray__codec_decode_args(lua_State *L, cray__lstate *ls, cray__blob *b);

/* Gives the FFI helpers of L (registry CRAY__REG_FFI, loaded already) the C functions
 * they need: the finalizer of views. */
void cray__codec_open(lua_State *L);

/* What a view is in C: the layout of every cray_view_<type> of lua/ffi_codec.lua. */
typedef struct cray__view {
  const void *data;
  uint32_t len; /* elements */
  uint32_t pad;
  cray__blob *owner;  /* one reference, dropped by the finalizer */
  cray__store *store; /* owner's store; not used once owner is an orphan */
} cray__view;


#endif
