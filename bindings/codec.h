/*
 * codec.h: Lua values <-> MessagePack blobs, in one pass each way (docs/format.md).
 *
 * Encoding walks the values with the Lua API and writes MessagePack into the state's
 * scratch buffer; ObjectRefs met on the way are listed in order so the blob can hold
 * them. Refusals raise an error object of kind "serialization" whose message names the
 * path to the value, as in "args[2].conn: cannot serialize userdata". Nothing is
 * allocated outside the reused scratch space, so a raised error leaks nothing.
 *
 * Decoding pushes the values of a blob. It checks every length against the bytes left,
 * so malformed or truncated blobs raise a "serialization" error, never a fault. Lua
 * bytecode is loaded only from blobs marked CRAY__BLOB_TRUSTED.
 */
#ifndef CRAY_CODEC_H
#define CRAY_CODEC_H

#include <lua.h>

#include "../runtime/blob.h"
#include "lstate.h"

/* Deepest nesting of tables, functions and extension payloads, both ways. */
#define CRAY__CODEC_MAX_DEPTH 128

/* Encodes the n values at stack slots first..first+n-1 into ls->buf (reset first) and
 * ls->refs. `root` names them in error paths: with n == 1 the value is `root`
 * ("value"), with n > 1 the i-th is `root[i]` ("args[2]"). Raises on refusal. */
void cray__codec_encode(lua_State *L, cray__lstate *ls, int first, int n, const char *root);

/* Pushes the first `max` values of b (all of them when max < 0); returns how many it
 * pushed. Raises on malformed input. */
int cray__codec_decode(lua_State *L, cray__lstate *ls, const cray__blob *b, int max);

/* Pushes a task's arguments, the values of b, except that an ObjectRef at the top level
 * stands for the first value of its object (which must be ready); returns how many. */
int cray__codec_decode_args(lua_State *L, cray__lstate *ls, const cray__blob *b);

#endif
