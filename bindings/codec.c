/*
 * codec.c: Lua values <-> MessagePack blobs. See codec.h; docs/format.md is the format.
 *
 * Encoding is one recursive walk with the Lua API, writing into ls->scratch as it goes. The
 * walk keeps, on the C stack, two small arrays bounded by CRAY__CODEC_MAX_DEPTH:
 * - the ancestors (tables and functions being encoded, by lua_topointer), so that meeting
 *   one again writes a BACKREF to its position instead of recursing forever;
 * - the path (one descriptor per level: array index, stack slot of a map key, upvalue
 *   name), turned into text like `args[2].conn` only when a refusal raises.
 * Registry tables the walk may need (module map, error metatable, classes, C function
 * names, FFI helpers) are fetched on first use into nil slots pushed at the start, so a
 * put of plain values touches none of them and the walk's own pushes and pops never
 * disturb them. A raise unwinds through this file freely: the only memory it owns is
 * ls->scratch and ls->refs, which the next encode resets.
 *
 * No user code runs during a walk (raw access only, no metamethods), so a table cannot
 * change between the pass that counts its keys and the pass that writes them; the one
 * exception, a weak table losing entries to a collection, is detected and refused.
 *
 * Decoding pulls items with cray__mp_next, which checks every length against the bytes
 * left; counts of arrays and maps are checked against the bytes left before anything is
 * allocated for them, and extension payloads are read with a reader bounded to the
 * payload. Tables and functions being decoded sit on the Lua stack; their slots are the
 * decoder's ancestor stack, which BACKREF indexes.
 */
#include "codec.h"

#include <lauxlib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../runtime/alloc.h"
#include "../runtime/id.h"
#include "../runtime/store.h"
#include "objref.h"

/* lua_type() of cdata in LuaJIT, which has no public name for it. */
#define CDATA_TYPE 10
/* Registry key (its address, a light userdata: no string to hash on every put) of this
 * file's own cache: loaded module table -> require name, weak keys. */
static const char modules_key;
/* Integers beyond this magnitude are not all exact as doubles. */
#define EXACT_INT 9007199254740992.0 /* 2^53 */
/* Preallocation hints are capped: the count in a blob is a claim, not a promise. */
#define SIZE_HINT (1 << 20)

static const uint8_t element_size[] = {0, 1, 1, 2, 2, 4, 4, 8, 8, 4, 8};
#define NELEMENT_CODES 10

/* ==== encoding ==== */

enum { SEG_INDEX, SEG_KEY, SEG_KEYOF, SEG_UPVALUE };

typedef struct seg {
  int kind;
  int slot;          /* SEG_KEY, SEG_KEYOF: stack slot of the key */
  lua_Number index;  /* SEG_INDEX: array position; SEG_UPVALUE: upvalue number */
  const char *name;  /* SEG_UPVALUE */
} seg;

enum { SLOT_MODULES, SLOT_ERROR_MT, SLOT_CLASSES, SLOT_CNAMES, SLOT_FFI, NSLOTS };

static const char *const slot_keys[NSLOTS] = {NULL, CRAY__REG_ERROR_MT,
                                              CRAY__REG_CLASSES, CRAY__REG_CNAMES,
                                              CRAY__REG_FFI};

typedef struct enc {
  lua_State *L;
  cray__lstate *ls;
  cray__buf *b;
  const char *root;
  int root_index;     /* i of `root[i]` when encoding several values, else 0 */
  const void *globals;
  int slots;          /* stack slot of the first of NSLOTS registry caches */
  int in_function;    /* > 0 while encoding some function's upvalues */
  int rebuilt;        /* the module map was rebuilt during this encode */
  int nanc, nseg;
  const void *anc[CRAY__CODEC_MAX_DEPTH];
  seg path[CRAY__CODEC_MAX_DEPTH + 2];
} enc;

static void enc_value(enc *e, int idx);

/* ---- error paths, built only when raising ---- */

static int is_identifier(const char *s, size_t n) {
  static const char *const keywords[] = {
      "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
      "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
      NULL};
  if (n == 0 || n > 48 || (s[0] >= '0' && s[0] <= '9')) return 0;
  for (size_t i = 0; i < n; i++)
    if (!(s[i] == '_' || ((s[i] | 32) >= 'a' && (s[i] | 32) <= 'z') ||
          (s[i] >= '0' && s[i] <= '9')))
      return 0;
  for (int i = 0; keywords[i]; i++)
    if (strlen(keywords[i]) == n && memcmp(keywords[i], s, n) == 0) return 0;
  return 1;
}

/* `["a b"]`, escaped, long keys cut short: the path is for a human. */
static void quote_key(char *out, size_t cap, const char *s, size_t n) {
  size_t o = 0, limit = n > 40 ? 37 : n;
  out[o++] = '[', out[o++] = '"';
  for (size_t i = 0; i < limit && o + 8 < cap; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') out[o++] = '\\', out[o++] = (char)c;
    else if (c == '\n') out[o++] = '\\', out[o++] = 'n';
    else if (c < 32 || c == 127) o += (size_t)snprintf(out + o, cap - o, "\\%u", c);
    else out[o++] = (char)c;
  }
  if (limit < n && o + 6 < cap) out[o++] = '.', out[o++] = '.', out[o++] = '.';
  out[o++] = '"', out[o++] = ']', out[o] = 0;
}

static void number_key(char *out, size_t cap, lua_Number k) {
  if (k == floor(k) && fabs(k) < EXACT_INT) snprintf(out, cap, "[%lld]", (long long)k);
  else snprintf(out, cap, "[%.17g]", k);
}

static void seg_text(enc *e, const seg *s, char *out, size_t cap) {
  lua_State *L = e->L;
  switch (s->kind) {
    case SEG_INDEX:
      number_key(out, cap, s->index);
      return;
    case SEG_KEYOF:
      snprintf(out, cap, ".<key>");
      return;
    case SEG_UPVALUE:
      if (s->name && *s->name) snprintf(out, cap, ".<upvalue %.48s>", s->name);
      else snprintf(out, cap, ".<upvalue #%d>", (int)s->index);
      return;
  }
  switch (lua_type(L, s->slot)) { /* SEG_KEY; never lua_tolstring a number key in place */
    case LUA_TSTRING: {
      size_t n;
      const char *k = lua_tolstring(L, s->slot, &n);
      if (is_identifier(k, n)) snprintf(out, cap, ".%s", k);
      else quote_key(out, cap, k, n);
      return;
    }
    case LUA_TNUMBER:
      number_key(out, cap, lua_tonumber(L, s->slot));
      return;
    case LUA_TBOOLEAN:
      snprintf(out, cap, "[%s]", lua_toboolean(L, s->slot) ? "true" : "false");
      return;
    default:
      snprintf(out, cap, "[<%s key>]", luaL_typename(L, s->slot));
      return;
  }
}

#define SEG_CHARS 64

/* The path to the value being encoded, at most ~240 characters: when longer, the middle
 * gives way to "...", keeping the root and the innermost keys. */
static void path_text(enc *e, char *out, size_t cap) {
  char parts[CRAY__CODEC_MAX_DEPTH + 3][SEG_CHARS];
  int n = 0;
  size_t len[CRAY__CODEC_MAX_DEPTH + 3], total = 0;
  snprintf(parts[n++], SEG_CHARS, "%.60s", e->root);
  if (e->root_index) snprintf(parts[n++], SEG_CHARS, "[%d]", e->root_index);
  for (int i = 0; i < e->nseg; i++) seg_text(e, &e->path[i], parts[n++], SEG_CHARS);
  for (int i = 0; i < n; i++) total += len[i] = strlen(parts[i]);
  size_t o = 0;
  out[0] = 0;
  if (total < cap && total <= 240) {
    for (int i = 0; i < n; i++) memcpy(out + o, parts[i], len[i]), o += len[i];
    out[o] = 0;
    return;
  }
  int head = 1, tail = n; /* the root, at least */
  size_t used = len[0];
  while (head < n && used + len[head] <= 100) used += len[head++];
  used = 0;
  while (tail > head && used + len[tail - 1] <= 120) used += len[--tail];
  for (int i = 0; i < head; i++) memcpy(out + o, parts[i], len[i]), o += len[i];
  memcpy(out + o, "...", 3), o += 3;
  for (int i = tail; i < n; i++) memcpy(out + o, parts[i], len[i]), o += len[i];
  out[o] = 0;
}

static int refuse(enc *e, const char *kind, const char *fmt, ...) {
  char what[200], path[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  lua_checkstack(e->L, 8);
  path_text(e, path, sizeof path);
  return cray__raise(e->L, kind, "%s: %s", path, what);
}

static inline void seg_push(enc *e, int kind, int slot, lua_Number index, const char *name) {
  seg *s = &e->path[e->nseg++];
  s->kind = kind, s->slot = slot, s->index = index, s->name = name;
}

/* ---- helpers ---- */

/* The stack slot holding registry[slot_keys[which]], fetched on first use. It may hold
 * nil (not set up in this state): callers check the type. */
static int cached(enc *e, int which) {
  int idx = e->slots + which;
  if (lua_isnil(e->L, idx)) {
    if (slot_keys[which]) {
      lua_getfield(e->L, LUA_REGISTRYINDEX, slot_keys[which]);
    } else {
      lua_pushlightuserdata(e->L, (void *)&modules_key);
      lua_rawget(e->L, LUA_REGISTRYINDEX);
    }
    lua_replace(e->L, idx);
  }
  return idx;
}

static void stack_room(enc *e, int n) {
  if (!lua_checkstack(e->L, n)) refuse(e, "serialization", "Lua stack overflow");
}

static void ancestor_push(enc *e, const void *p) {
  if (e->nanc == CRAY__CODEC_MAX_DEPTH)
    refuse(e, "serialization", "cannot serialize: nesting deeper than %d levels",
           CRAY__CODEC_MAX_DEPTH);
  e->anc[e->nanc++] = p;
  stack_room(e, 12);
}

/* Writes a BACKREF and returns 1 when p is being encoded further up. */
static int backref(enc *e, const void *p) {
  for (int i = 0; i < e->nanc; i++) {
    if (e->anc[i] == p) {
      cray__mp_ext(e->b, CRAY__EXT_BACKREF, i < 128 ? 1 : 2);
      cray__mp_uint(e->b, (uint64_t)i);
      return 1;
    }
  }
  return 0;
}

/* An ext32 whose length is written at its end. Its payload is what the scratch buffer
 * took since the header plus the bytes spliced in between, which the blob holds too. */
typedef struct ext_mark {
  size_t at, spliced;
} ext_mark;

static ext_mark ext_begin(enc *e, int8_t type) {
  return (ext_mark){cray__mp_ext_begin(e->b, type), e->ls->spliced};
}

static void ext_end(enc *e, ext_mark m) {
  if (e->b->failed) return;
  size_t n = e->b->len - m.at - 6 + (e->ls->spliced - m.spliced);
  if (n > UINT32_MAX)
    refuse(e, "serialization", "cannot serialize: a function or object larger than 4 GiB");
  cray__be32(e->b->data + m.at + 1, (uint32_t)n);
}

/* An extension whose payload is the bytes of the string at the top of the stack. */
static void ext_name(enc *e, int8_t type) {
  size_t n;
  const char *s = lua_tolstring(e->L, -1, &n);
  cray__mp_ext(e->b, type, (uint32_t)n);
  cray__buf_write(e->b, s, n);
}

/* Bytes that go into the blob straight from the Lua value, at the current position. */
static void splice(enc *e, const void *src, size_t n) {
  cray__lstate *ls = e->ls;
  if (ls->nsplices == ls->splices_cap) {
    uint32_t cap = ls->splices_cap ? ls->splices_cap * 2 : 8;
    cray__splice *v = cap > ls->splices_cap ? cray__realloc(ls->splices, cap * sizeof *v) : NULL;
    if (!v) refuse(e, "out_of_memory", "cannot serialize: out of memory");
    ls->splices = v;
    ls->splices_cap = cap;
  }
  ls->splices[ls->nsplices++] = (cray__splice){e->b->len, src, n};
  ls->spliced += n;
}

/* Doubles that hold an integer travel as msgpack ints, up to 2^53 where every integer is
 * still exact: beyond, a Lua number is not an integer so much as a rounded float, and a
 * msgpack int there would decode as int64 cdata instead of coming back a number. */
static inline void enc_number(cray__buf *b, lua_Number d) {
  if (d >= -EXACT_INT && d <= EXACT_INT) {
    int64_t i = (int64_t)d;
    if ((lua_Number)i == d && (i != 0 || !signbit(d))) {
      cray__mp_int(b, i);
      return;
    }
  }
  cray__mp_double(b, d);
}

/* ---- tables ---- */

/* Writes the module's name and returns 1 when the table at idx is a loaded module. */
static int enc_module(enc *e, int idx) {
  lua_State *L = e->L;
  int map = cached(e, SLOT_MODULES);
  for (;;) {
    if (lua_istable(L, map)) {
      lua_pushvalue(L, idx);
      lua_rawget(L, map);
      if (lua_type(L, -1) == LUA_TSTRING) {
        ext_name(e, CRAY__EXT_MODULE);
        lua_pop(L, 1);
        return 1;
      }
      lua_pop(L, 1);
      /* A miss may be a module loaded since the map was built. Rebuilding costs a walk
       * of package.loaded, so it is done for tables a function captures (where modules
       * are expected), once per encode, and not for the plain tables of every put. */
      if (!e->in_function || e->rebuilt) return 0;
    }
    e->rebuilt = 1;
    lua_createtable(L, 0, 64);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
    if (lua_istable(L, -1)) {
      lua_pushnil(L);
      while (lua_next(L, -2)) {
        if (lua_type(L, -2) == LUA_TSTRING && lua_istable(L, -1) &&
            lua_topointer(L, -1) != e->globals) {
          /* A table loaded under two names goes by the shorter, so the choice is stable. */
          lua_pushvalue(L, -1);
          lua_rawget(L, -5);
          int take = lua_isnil(L, -1) || lua_objlen(L, -1) > lua_objlen(L, -3);
          lua_pop(L, 1);
          if (take) {
            lua_pushvalue(L, -1);
            lua_pushvalue(L, -3);
            lua_rawset(L, -6);
          }
        }
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 1);
    lua_pushlightuserdata(L, (void *)&modules_key);
    lua_pushvalue(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
    lua_replace(L, map);
  }
}

/* The fields of the table at idx: an array when its keys are exactly 1..n, else a map. */
static void enc_fields(enc *e, int idx, int force_map) {
  lua_State *L = e->L;
  cray__buf *b = e->b;
  /* Counting first keeps headers minimal and nested values encoded once. */
  size_t count = 0;
  lua_Number max = 0;
  int array = !force_map;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    count++;
    if (array) {
      lua_Number k = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
      if (k >= 1 && k == floor(k)) max = k > max ? k : max;
      else array = 0;
    }
  }
  if (count > UINT32_MAX) refuse(e, "serialization", "cannot serialize: table too large");
  if (array && max <= (lua_Number)count) { /* count distinct keys, all in 1..count */
    cray__mp_array(b, (uint32_t)count);
    for (size_t i = 1; i <= count; i++) {
      lua_rawgeti(L, idx, (int)i);
      seg_push(e, SEG_INDEX, 0, (lua_Number)i, NULL);
      enc_value(e, lua_gettop(L));
      e->nseg--;
      lua_pop(L, 1);
    }
    return;
  }
  cray__mp_map(b, (uint32_t)count);
  size_t written = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int k = lua_gettop(L) - 1;
    if (++written > count) break;
    seg_push(e, SEG_KEYOF, k, 0, NULL);
    enc_value(e, k);
    e->path[e->nseg - 1].kind = SEG_KEY;
    enc_value(e, k + 1);
    e->nseg--;
    lua_pop(L, 1);
  }
  if (written != count)
    refuse(e, "serialization", "cannot serialize: a weak table changed while being encoded");
}

static void enc_table(enc *e, int idx) {
  lua_State *L = e->L;
  cray__buf *b = e->b;
  const void *p = lua_topointer(L, idx);
  if (p == e->globals) {
    cray__mp_ext(b, CRAY__EXT_GLOBALS, 0);
    return;
  }
  if (backref(e, p) || enc_module(e, idx)) return;
  if (!lua_getmetatable(L, idx)) {
    ancestor_push(e, p);
    enc_fields(e, idx, 0);
    e->nanc--;
    return;
  }
  int mt = lua_gettop(L);
  if (lua_rawequal(L, mt, cached(e, SLOT_ERROR_MT))) {
    lua_pop(L, 1);
    ancestor_push(e, p);
    ext_mark at = ext_begin(e, CRAY__EXT_ERROR);
    enc_fields(e, idx, 1);
    ext_end(e, at);
    e->nanc--;
    return;
  }
  int classes = cached(e, SLOT_CLASSES);
  if (lua_istable(L, classes)) {
    lua_rawget(L, classes); /* pops mt */
    if (lua_type(L, -1) == LUA_TSTRING) {
      ancestor_push(e, p);
      ext_mark at = ext_begin(e, CRAY__EXT_CLASS);
      cray__mp_array(b, 2);
      size_t n;
      const char *name = lua_tolstring(L, -1, &n);
      cray__mp_str(b, name, n);
      lua_pop(L, 1);
      enc_fields(e, idx, 0);
      ext_end(e, at);
      e->nanc--;
      return;
    }
  }
  refuse(e, "serialization",
         "cannot serialize a table with a metatable that is not registered "
         "(cray.register_class)");
}

/* ---- functions ---- */

static int dump_writer(lua_State *L, const void *p, size_t n, void *ud) {
  (void)L;
  cray__buf *b = ud;
  cray__buf_write(b, p, n);
  return b->failed;
}

/* The bytecode of the function at idx as a msgpack bin. lua_dump streams it, so it is
 * dumped first and then framed: the header goes in front by writing the framed copy
 * after the raw bytes (room reserved, so no move of the buffer) and sliding it back. */
static void enc_bytecode(enc *e, int idx) {
  cray__buf *b = e->b;
  size_t at = b->len;
  lua_pushvalue(e->L, idx);
  int rc = lua_dump(e->L, dump_writer, b);
  lua_pop(e->L, 1);
  if (b->failed) return; /* reported as out of memory at the end */
  if (rc) refuse(e, "serialization", "cannot serialize a function that lua_dump refuses");
  size_t n = b->len - at;
  if (n > UINT32_MAX) refuse(e, "serialization", "cannot serialize: bytecode over 4 GiB");
  if (cray__buf_grow(b, n + 5)) return;
  cray__mp_bin(b, b->data + at, n);
  size_t framed = b->len - at - n;
  memmove(b->data + at, b->data + at + n, framed);
  b->len = at + framed;
}

static void enc_function(enc *e, int idx) {
  lua_State *L = e->L;
  cray__buf *b = e->b;
  if (lua_iscfunction(L, idx)) {
    int cnames = cached(e, SLOT_CNAMES);
    if (lua_istable(L, cnames)) {
      lua_pushvalue(L, idx);
      lua_rawget(L, cnames);
      if (lua_type(L, -1) == LUA_TSTRING) {
        ext_name(e, CRAY__EXT_CFUNC);
        lua_pop(L, 1);
        return;
      }
      lua_pop(L, 1);
    }
    refuse(e, "serialization",
           "cannot serialize C function (only standard-library functions travel)");
  }
  const void *p = lua_topointer(L, idx);
  if (backref(e, p)) return;
  ancestor_push(e, p);
  ext_mark at = ext_begin(e, CRAY__EXT_FUNCTION);
  cray__mp_array(b, 2);
  enc_bytecode(e, idx);
  int nup = 0;
  while (lua_getupvalue(L, idx, nup + 1)) lua_pop(L, 1), nup++;
  cray__mp_array(b, (uint32_t)nup);
  e->in_function++;
  for (int i = 1; i <= nup; i++) {
    const char *name = lua_getupvalue(L, idx, i);
    seg_push(e, SEG_UPVALUE, 0, i, name);
    enc_value(e, lua_gettop(L));
    e->nseg--;
    lua_pop(L, 1);
  }
  e->in_function--;
  ext_end(e, at);
  e->nanc--;
}

/* ---- userdata and cdata ---- */

static void enc_userdata(enc *e, int idx) {
  cray__lstate *ls = e->ls;
  cray__entry *ent = cray__objref_test(e->L, ls, idx);
  if (!ent) refuse(e, "serialization", "cannot serialize userdata");
  cray__mp_ext(e->b, CRAY__EXT_REF, 16);
  uint8_t *p = cray__buf_reserve(e->b, 16);
  if (p) cray__id_store(&ent->id, p);
  if (ls->nrefs == ls->refs_cap) {
    uint32_t cap = ls->refs_cap ? ls->refs_cap * 2 : 16;
    cray__entry **v = cap > ls->refs_cap ? cray__realloc(ls->refs, cap * sizeof *v) : NULL;
    if (!v) refuse(e, "out_of_memory", "cannot serialize: out of memory for %u refs", cap);
    ls->refs = v;
    ls->refs_cap = cap;
  }
  ls->refs[ls->nrefs++] = ent;
}

/* An FFI array's payload: one byte with the element code (low 4 bits) and the length of
 * the padding that follows (high 4 bits), the padding (zeros), then the elements, which
 * so start 16-byte aligned in the blob and can be viewed in place. The header's size is
 * chosen from the largest payload the padding allows, so the padding can be computed
 * before the header is written. */
static void enc_ffi_array(enc *e, int code, const uint8_t *src, size_t bytes) {
  cray__buf *b = e->b;
  if (bytes > UINT32_MAX - 16)
    refuse(e, "serialization", "cannot serialize an FFI array larger than 4 GiB");
  size_t head = bytes + 16 <= 0xff ? 3 : bytes + 16 <= 0xffff ? 4 : 6;
  size_t at = b->len + e->ls->spliced; /* where the header lands in the blob */
  unsigned pad = (unsigned)((16 - (at + head + 1) % 16) % 16);
  uint32_t payload = (uint32_t)(1 + pad + bytes);
  uint8_t *p = cray__buf_reserve(b, head + 1 + pad);
  if (p) {
    if (head == 3) p[0] = 0xc7, p[1] = (uint8_t)payload;
    else if (head == 4) p[0] = 0xc8, cray__be16(p + 1, (uint16_t)payload);
    else p[0] = 0xc9, cray__be32(p + 1, payload);
    p[head - 1] = CRAY__EXT_FFI_ARRAY;
    p[head] = (uint8_t)(code | pad << 4);
    memset(p + head + 1, 0, pad);
  }
  if (bytes >= CRAY__SPLICE_MIN) splice(e, src, bytes);
  else cray__buf_write(b, src, bytes);
}

static void enc_cdata(enc *e, int idx) {
  lua_State *L = e->L;
  cray__buf *b = e->b;
  int ffi = cached(e, SLOT_FFI);
  if (!lua_istable(L, ffi)) refuse(e, "serialization", "cannot serialize cdata (no FFI helpers)");
  lua_getfield(L, ffi, "classify");
  lua_pushvalue(L, idx);
  lua_call(L, 1, 4);
  if (lua_isnil(L, -4)) refuse(e, "serialization", "cannot serialize %s", lua_tostring(L, -3));
  int ext = (int)lua_tointeger(L, -4), code = (int)lua_tointeger(L, -3);
  lua_Number n = lua_tonumber(L, -2);
  int view = lua_toboolean(L, -1);
  lua_pop(L, 4);
  const uint8_t *src = lua_topointer(L, idx);
  if (ext == CRAY__EXT_INT64 || ext == CRAY__EXT_UINT64) {
    uint64_t v;
    memcpy(&v, src, 8);
    cray__mp_ext(b, (int8_t)ext, 8);
    uint8_t *p = cray__buf_reserve(b, 8);
    if (p) cray__be64(p, v);
    return;
  }
  if (view) src = ((const cray__view *)src)->data;
  if (n > (lua_Number)UINT32_MAX)
    refuse(e, "serialization", "cannot serialize an FFI array larger than 4 GiB");
  enc_ffi_array(e, code, src, (size_t)n);
}

/* ---- any value ---- */

static void enc_value(enc *e, int idx) {
  lua_State *L = e->L;
  int t = lua_type(L, idx);
  switch (t) {
    case LUA_TNIL:
      cray__mp_nil(e->b);
      return;
    case LUA_TBOOLEAN:
      cray__mp_bool(e->b, lua_toboolean(L, idx));
      return;
    case LUA_TNUMBER:
      enc_number(e->b, lua_tonumber(L, idx));
      return;
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      if (n > UINT32_MAX) refuse(e, "serialization", "cannot serialize a string over 4 GiB");
      if (n < CRAY__SPLICE_MIN) {
        cray__mp_str(e->b, s, n);
      } else {
        cray__mp_str_head(e->b, n);
        splice(e, s, n);
      }
      return;
    }
    case LUA_TTABLE:
      enc_table(e, idx);
      return;
    case LUA_TFUNCTION:
      enc_function(e, idx);
      return;
    case LUA_TUSERDATA:
      enc_userdata(e, idx);
      return;
    case LUA_TLIGHTUSERDATA:
      refuse(e, "serialization", "cannot serialize a light userdata");
      return;
    case LUA_TTHREAD:
      refuse(e, "serialization", "cannot serialize a coroutine");
      return;
    case CDATA_TYPE:
      enc_cdata(e, idx);
      return;
    default:
      refuse(e, "serialization", "cannot serialize a value of type %s", lua_typename(L, t));
  }
}

void cray__codec_encode(lua_State *L, cray__lstate *ls, int first, int n, const char *root) {
  enc e;
  int top = lua_gettop(L);
  if (first < 0 && first > LUA_REGISTRYINDEX) first = top + first + 1;
  ls->scratch.len = 0;
  ls->scratch.failed = 0;
  ls->nrefs = 0;
  ls->nsplices = 0;
  ls->spliced = 0;
  e.L = L;
  e.ls = ls;
  e.b = &ls->scratch;
  e.root = root ? root : "value";
  e.root_index = 0;
  e.globals = lua_topointer(L, LUA_GLOBALSINDEX);
  e.in_function = e.rebuilt = 0;
  e.nanc = e.nseg = 0;
  if (!lua_checkstack(L, NSLOTS + 16)) cray__raise(L, "serialization", "Lua stack overflow");
  lua_settop(L, top + NSLOTS);
  e.slots = top + 1;
  for (int i = 0; i < n; i++) {
    if (n > 1) e.root_index = i + 1;
    enc_value(&e, first + i);
  }
  lua_settop(L, top);
  if (ls->scratch.failed)
    cray__raise(L, "out_of_memory", "%s: cannot serialize: out of memory (%zu bytes written)",
                e.root, ls->scratch.len);
}

/* Scratch space bigger than this is freed once its blob is made. */
#define SCRATCH_KEEP ((size_t)1 << 20)

cray__blob *cray__codec_blob(cray__lstate *ls, cray__store *s, uint32_t count, uint32_t flags) {
  cray__blob *b = cray__blob_alloc(s, cray__codec_len(ls), count, ls->refs, ls->nrefs, flags);
  if (b) {
    uint8_t *out = b->data;
    size_t from = 0;
    for (uint32_t i = 0; i < ls->nsplices; i++) {
      const cray__splice *sp = &ls->splices[i];
      if (sp->at > from) memcpy(out, ls->scratch.data + from, sp->at - from);
      out += sp->at - from;
      from = sp->at;
      memcpy(out, sp->src, sp->len);
      out += sp->len;
    }
    if (ls->scratch.len > from) memcpy(out, ls->scratch.data + from, ls->scratch.len - from);
  }
  if (ls->scratch.cap > SCRATCH_KEEP) cray__buf_free(&ls->scratch);
  if (ls->splices_cap > 1024) {
    cray__free(ls->splices);
    ls->splices = NULL;
    ls->splices_cap = 0;
  }
  ls->nsplices = 0;
  ls->spliced = 0;
  return b;
}

void cray__codec_reserve(lua_State *L, cray__lstate *ls, size_t len, const char *fn) {
  cray__store *s = ls->rt->store;
  if (cray__store_reserve(s, len, 1) != 0) {
    char why[1024];
    cray__store_describe_full(s, len, why, sizeof why);
    cray__raise(L, "out_of_memory", "%s: out of memory: %s", fn, why);
  }
}

cray__blob *cray__codec_store_blob(lua_State *L, cray__lstate *ls, uint32_t count,
                                   const char *fn) {
  size_t len = cray__codec_len(ls);
  cray__codec_reserve(L, ls, len, fn);
  cray__blob *b = cray__codec_blob(ls, ls->rt->store, count, CRAY__BLOB_TRUSTED);
  if (!b) cray__raise(L, "out_of_memory", "%s: no memory for a %zu-byte object", fn, len);
  return b;
}

/* ==== decoding ==== */

typedef struct dec {
  lua_State *L;
  cray__lstate *ls;
  cray__blob *b;
  uint32_t nextref;
  int nanc;
  int anc[CRAY__CODEC_MAX_DEPTH]; /* stack slots of the tables and functions being built */
} dec;

static void dec_item(dec *d, cray__mp_reader *r, const cray__mp_item *it);

static int malformed(dec *d, const uint8_t *at, const char *fmt, ...) {
  char what[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  lua_checkstack(d->L, 8);
  return cray__raise(d->L, "serialization", "malformed blob: %s (at byte %zu of %zu)", what,
                     (size_t)(at - d->b->data), d->b->len);
}

static void next_item(dec *d, cray__mp_reader *r, cray__mp_item *it) {
  if (cray__mp_next(r, it) != 0) /* 0xc1 is the one byte that starts no item */
    malformed(d, r->p, r->p < r->end && *r->p == 0xc1 ? "invalid MessagePack (0xc1)"
                                                       : "truncated");
}

static void dec_value(dec *d, cray__mp_reader *r) {
  cray__mp_item it;
  next_item(d, r, &it);
  dec_item(d, r, &it);
}

static void room(dec *d, int n) {
  if (!lua_checkstack(d->L, n)) cray__raise(d->L, "serialization", "Lua stack overflow");
}

static int anc_push(dec *d, const cray__mp_reader *r) {
  if (d->nanc == CRAY__CODEC_MAX_DEPTH)
    malformed(d, r->p, "nesting deeper than %d levels", CRAY__CODEC_MAX_DEPTH);
  room(d, 8);
  return d->anc[d->nanc++] = lua_gettop(d->L);
}

/* Pushes registry[CRAY__REG_FFI][fn], a helper of lua/ffi_codec.lua. */
static void push_ffi_helper(dec *d, const char *fn) {
  lua_State *L = d->L;
  lua_getfield(L, LUA_REGISTRYINDEX, CRAY__REG_FFI);
  if (!lua_istable(L, -1))
    cray__raise(L, "serialization", "cannot decode cdata: no FFI helpers in this state");
  lua_getfield(L, -1, fn);
  lua_remove(L, -2);
}

static void push_int64(dec *d, uint64_t bits, int is_signed) {
  push_ffi_helper(d, is_signed ? "new_int64" : "new_uint64");
  lua_call(d->L, 0, 1);
  memcpy((void *)lua_topointer(d->L, -1), &bits, 8);
}

/* Integers come back as numbers while every value of their magnitude is exact in a
 * double, as int64_t/uint64_t cdata beyond, so no value is ever rounded. */
static void dec_int(dec *d, int64_t v) {
  if (v >= -(int64_t)EXACT_INT && v <= (int64_t)EXACT_INT) lua_pushnumber(d->L, (lua_Number)v);
  else push_int64(d, (uint64_t)v, 1);
}

static void dec_array(dec *d, cray__mp_reader *r, uint32_t n) {
  lua_State *L = d->L;
  if (n > (size_t)(r->end - r->p) || n > INT32_MAX)
    malformed(d, r->p, "array of %u elements in %zu bytes", n, (size_t)(r->end - r->p));
  lua_createtable(L, n < SIZE_HINT ? (int)n : SIZE_HINT, 0);
  anc_push(d, r);
  for (uint32_t i = 0; i < n; i++) {
    dec_value(d, r);
    lua_rawseti(L, -2, (int)i + 1);
  }
  d->nanc--;
}

static void dec_map(dec *d, cray__mp_reader *r, uint32_t n) {
  lua_State *L = d->L;
  if (2 * (uint64_t)n > (size_t)(r->end - r->p))
    malformed(d, r->p, "map of %u pairs in %zu bytes", n, (size_t)(r->end - r->p));
  lua_createtable(L, 0, n < SIZE_HINT ? (int)n : SIZE_HINT);
  anc_push(d, r);
  for (uint32_t i = 0; i < n; i++) {
    const uint8_t *at = r->p;
    dec_value(d, r);
    if (lua_isnil(L, -1)) malformed(d, at, "nil table key");
    if (lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) != lua_tonumber(L, -1))
      malformed(d, at, "NaN table key");
    dec_value(d, r);
    lua_rawset(L, -3);
  }
  d->nanc--;
}

/* The payload of an extension as a reader of its own; done() checks it was used up. */
static cray__mp_reader payload(const cray__mp_item *it) {
  cray__mp_reader sub = {it->p, it->p + it->n};
  return sub;
}

static void done(dec *d, const cray__mp_reader *sub, const char *what) {
  if (sub->p != sub->end) malformed(d, sub->p, "trailing bytes in %s", what);
}

static void expect(dec *d, cray__mp_reader *r, cray__mp_item *it, cray__mp_type type,
                   const char *what) {
  const uint8_t *at = r->p;
  next_item(d, r, it);
  if (it->type != type) malformed(d, at, "%s", what);
}

static void dec_function(dec *d, const cray__mp_item *it) {
  lua_State *L = d->L;
  if (!(d->b->flags & CRAY__BLOB_TRUSTED))
    cray__raise(L, "serialization", "refusing to load Lua bytecode from an untrusted blob");
  cray__mp_reader sub = payload(it);
  cray__mp_item x;
  expect(d, &sub, &x, CRAY__MP_ARRAY, "a function is [bytecode, upvalues]");
  if (x.n != 2) malformed(d, it->p, "a function is [bytecode, upvalues]");
  expect(d, &sub, &x, CRAY__MP_BIN, "function bytecode must be bin");
  room(d, 8);
  if (luaL_loadbufferx(L, (const char *)x.p, x.n, "=(cray function)", "b") != 0)
    malformed(d, x.p, "cannot load function: %s", lua_tostring(L, -1));
  int f = anc_push(d, &sub);
  expect(d, &sub, &x, CRAY__MP_ARRAY, "function upvalues must be an array");
  if (x.n > (size_t)(sub.end - sub.p)) malformed(d, sub.p, "upvalue count past the payload");
  for (uint32_t i = 1; i <= x.n; i++) {
    dec_value(d, &sub);
    if (!lua_setupvalue(L, f, (int)i))
      malformed(d, sub.p, "the blob gives a function more upvalues than it has");
  }
  done(d, &sub, "a function");
  d->nanc--;
}

/* ERROR and CLASS: a table built from the payload, then given its metatable. */
static void dec_table_payload(dec *d, cray__mp_reader *sub, int maps_only) {
  cray__mp_item x;
  const uint8_t *at = sub->p;
  next_item(d, sub, &x);
  if (x.type != CRAY__MP_MAP && (maps_only || x.type != CRAY__MP_ARRAY))
    malformed(d, at, maps_only ? "an error object's payload must be a map"
                               : "a class instance's fields must be an array or map");
  dec_item(d, sub, &x);
}

/* The state does not know class `name`: loads the metatable the runtime has for it (a
 * class registered in another state, see runtime/classes.h), registers it here, and
 * leaves it on the stack above the classes table. 0 when the runtime has none. */
static int load_published_class(dec *d, const char *name, uint32_t len) {
  lua_State *L = d->L;
  cray__blob *b = d->ls->rt ? cray__classes_get(&d->ls->rt->classes, name, len) : NULL;
  if (!b) return 0;
  int ok = cray__codec_decode(L, d->ls, b, 1) == 1 && lua_istable(L, -1);
  cray__blob_release(d->ls->rt->store, b);
  if (!ok) return 0;
  lua_pushlstring(L, name, len);
  lua_pushvalue(L, -2);
  lua_rawset(L, -4); /* name -> metatable */
  lua_pushvalue(L, -1);
  lua_pushlstring(L, name, len);
  lua_rawset(L, -4); /* metatable -> name */
  return 1;
}

static void dec_class(dec *d, const cray__mp_item *it) {
  lua_State *L = d->L;
  cray__mp_reader sub = payload(it);
  cray__mp_item x;
  expect(d, &sub, &x, CRAY__MP_ARRAY, "a class instance is [name, fields]");
  if (x.n != 2) malformed(d, it->p, "a class instance is [name, fields]");
  expect(d, &sub, &x, CRAY__MP_STR, "a class name must be a string");
  const char *name = (const char *)x.p;
  uint32_t len = x.n;
  dec_table_payload(d, &sub, 0);
  done(d, &sub, "a class instance");
  room(d, 4);
  lua_getfield(L, LUA_REGISTRYINDEX, CRAY__REG_CLASSES);
  if (lua_istable(L, -1)) {
    lua_pushlstring(L, name, len);
    lua_rawget(L, -2);
  } else {
    lua_pushnil(L);
  }
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    if (!load_published_class(d, name, len))
      cray__raise(L, "serialization",
                  "class '%.*s' is not registered in this state (register it here with "
                  "cray.register_class, or give it a metatable that can be stored)",
                  (int)(len > 100 ? 100 : len), name);
  }
  lua_setmetatable(L, -3);
  lua_pop(L, 1);
}

static void dec_error(dec *d, const cray__mp_item *it) {
  cray__mp_reader sub = payload(it);
  dec_table_payload(d, &sub, 1);
  done(d, &sub, "an error object");
  lua_getfield(d->L, LUA_REGISTRYINDEX, CRAY__REG_ERROR_MT);
  if (lua_istable(d->L, -1)) lua_setmetatable(d->L, -2);
  else lua_pop(d->L, 1);
}

/* A module by name. Only trusted blobs may make this state load one: require runs the
 * code of whatever file the name resolves to. Others find only loaded modules. */
static void dec_module(dec *d, const cray__mp_item *it) {
  lua_State *L = d->L;
  room(d, 4);
  if (d->b->flags & CRAY__BLOB_TRUSTED) {
    lua_getfield(L, LUA_GLOBALSINDEX, "require");
    lua_pushlstring(L, (const char *)it->p, it->n);
    lua_call(L, 1, 1);
    return;
  }
  lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
  if (lua_istable(L, -1)) {
    lua_pushlstring(L, (const char *)it->p, it->n);
    lua_rawget(L, -2);
    lua_remove(L, -2);
  }
  if (!lua_istable(L, -1))
    cray__raise(L, "serialization", "module '%.*s' is not loaded (an untrusted blob loads none)",
                (int)(it->n > 100 ? 100 : it->n), (const char *)it->p);
}

static void dec_cfunc(dec *d, const cray__mp_item *it) {
  lua_State *L = d->L;
  room(d, 4);
  lua_getfield(L, LUA_REGISTRYINDEX, CRAY__REG_CNAMES);
  if (lua_istable(L, -1)) {
    lua_pushlstring(L, (const char *)it->p, it->n);
    lua_rawget(L, -2);
    lua_remove(L, -2);
  }
  if (!lua_iscfunction(L, -1))
    cray__raise(L, "serialization", "C function '%.*s' is not available in this state",
                (int)(it->n > 100 ? 100 : it->n), (const char *)it->p);
}

/* A view of count elements at raw, holding a reference to the blob they lie in. Elements
 * the writer did not align (a C producer may leave the padding out) are first copied to
 * a blob of their own, which is aligned. The helper runs protected, so that the
 * reference is given back if it raises. */
static void push_view(dec *d, unsigned code, const uint8_t *raw, size_t count) {
  lua_State *L = d->L;
  cray__store *s = d->ls->rt ? d->ls->rt->store : NULL;
  room(d, 8);
  push_ffi_helper(d, "new_view");
  cray__blob *owner = d->b;
  if ((uintptr_t)raw % element_size[code]) {
    owner = cray__blob_new(raw, count * element_size[code], 0, NULL, 0, 0);
    if (!owner) cray__raise(L, "out_of_memory", "cannot decode an FFI array: out of memory");
    raw = owner->data;
  } else {
    cray__blob_retain(owner);
  }
  lua_pushinteger(L, (lua_Integer)code);
  lua_pushlightuserdata(L, (void *)raw);
  lua_pushnumber(L, (lua_Number)count);
  lua_pushlightuserdata(L, owner);
  lua_pushlightuserdata(L, s);
  if (lua_pcall(L, 5, 1, 0) != 0) {
    cray__blob_release(s, owner);
    lua_error(L);
  }
}

static void dec_ffi_array(dec *d, const cray__mp_item *it) {
  if (it->n < 1) malformed(d, it->p, "empty FFI array payload");
  unsigned code = it->p[0] & 15, pad = it->p[0] >> 4;
  if (code < 1 || code > NELEMENT_CODES) malformed(d, it->p, "unknown FFI element code %u", code);
  if (1 + pad > it->n) malformed(d, it->p, "FFI array padding past its payload");
  size_t bytes = it->n - 1 - pad;
  if (bytes % element_size[code])
    malformed(d, it->p, "FFI array of %zu bytes for %u-byte elements", bytes, element_size[code]);
  push_view(d, code, it->p + 1 + pad, bytes / element_size[code]);
}

static void dec_ref(dec *d, const cray__mp_item *it) {
  const cray__blob *b = d->b;
  if (it->n != 16) malformed(d, it->p, "an ObjectRef is 16 bytes, not %u", it->n);
  cray_id id = cray__id_load(it->p);
  cray__entry *e = d->nextref < b->nrefs ? b->refs[d->nextref] : NULL;
  if (!e || !cray__id_eq(&e->id, &id))
    cray__raise(d->L, "serialization", "blob's ref table does not match its contents");
  d->nextref++;
  room(d, 4);
  cray__store_retain(e);
  cray__objref_push(d->L, d->ls, e);
}

static void dec_ext(dec *d, const cray__mp_item *it) {
  lua_State *L = d->L;
  switch (it->ext) {
    case CRAY__EXT_REF:
      dec_ref(d, it);
      return;
    case CRAY__EXT_FUNCTION:
      dec_function(d, it);
      return;
    case CRAY__EXT_ERROR:
      dec_error(d, it);
      return;
    case CRAY__EXT_CLASS:
      dec_class(d, it);
      return;
    case CRAY__EXT_FFI_ARRAY:
      dec_ffi_array(d, it);
      return;
    case CRAY__EXT_MODULE:
      dec_module(d, it);
      return;
    case CRAY__EXT_GLOBALS:
      if (it->n != 0) malformed(d, it->p, "the globals extension has no payload");
      lua_pushvalue(L, LUA_GLOBALSINDEX);
      return;
    case CRAY__EXT_CFUNC:
      dec_cfunc(d, it);
      return;
    case CRAY__EXT_INT64:
    case CRAY__EXT_UINT64: {
      if (it->n != 8) malformed(d, it->p, "a 64-bit integer is 8 bytes, not %u", it->n);
      uint64_t v = 0;
      for (int i = 0; i < 8; i++) v = v << 8 | it->p[i];
      room(d, 4);
      push_int64(d, v, it->ext == CRAY__EXT_INT64);
      return;
    }
    case CRAY__EXT_BACKREF: {
      cray__mp_reader sub = payload(it);
      cray__mp_item x;
      next_item(d, &sub, &x);
      done(d, &sub, "a backref");
      if (x.type != CRAY__MP_INT || x.v.i < 0 || x.v.i >= d->nanc)
        malformed(d, it->p, "backref to no enclosing table or function");
      lua_pushvalue(L, d->anc[x.v.i]);
      return;
    }
    case CRAY__EXT_ACTOR:
    case CRAY__EXT_REMOTE:
      cray__raise(L, "serialization", "extension type %d (%s) is not supported yet", it->ext,
                  it->ext == CRAY__EXT_ACTOR ? "ActorHandle" : "remote function");
      return;
    default:
      malformed(d, it->p, "unknown extension type %d", it->ext);
  }
}

static void dec_item(dec *d, cray__mp_reader *r, const cray__mp_item *it) {
  lua_State *L = d->L;
  switch (it->type) {
    case CRAY__MP_NIL:
      lua_pushnil(L);
      return;
    case CRAY__MP_BOOL:
      lua_pushboolean(L, it->v.b);
      return;
    case CRAY__MP_INT:
      dec_int(d, it->v.i);
      return;
    case CRAY__MP_UINT:
      push_int64(d, it->v.u, 0);
      return;
    case CRAY__MP_FLOAT:
      lua_pushnumber(L, it->v.d);
      return;
    case CRAY__MP_STR:
    case CRAY__MP_BIN: /* Lua strings are bytes: a C producer's bin arrives as a string */
      lua_pushlstring(L, (const char *)it->p, it->n);
      return;
    case CRAY__MP_ARRAY:
      dec_array(d, r, it->n);
      return;
    case CRAY__MP_MAP:
      dec_map(d, r, it->n);
      return;
    case CRAY__MP_EXT:
      dec_ext(d, it);
      return;
  }
}

/* Sets d up to decode `count` values of b onto L's stack. */
static void dec_begin(dec *d, lua_State *L, cray__lstate *ls, cray__blob *b, uint32_t count) {
  d->L = L;
  d->ls = ls;
  d->b = b;
  d->nextref = 0;
  d->nanc = 0;
  if (count > INT32_MAX - 16 || !lua_checkstack(L, (int)count + 16))
    cray__raise(L, "serialization", "cannot decode %u values onto the Lua stack", count);
}

/* After all of b's values: no bytes and no refs may be left over. */
static void dec_end(dec *d, const cray__mp_reader *r) {
  if (r->p != r->end) malformed(d, r->p, "trailing bytes after %u values", d->b->count);
  if (d->nextref != d->b->nrefs)
    cray__raise(d->L, "serialization", "blob's ref table does not match its contents");
}

int cray__codec_decode(lua_State *L, cray__lstate *ls, cray__blob *b, int max) {
  dec d;
  uint32_t want = max >= 0 && (uint32_t)max < b->count ? (uint32_t)max : b->count;
  dec_begin(&d, L, ls, b, want);
  cray__mp_reader r = {b->data, b->data + b->len};
  for (uint32_t i = 0; i < want; i++) dec_value(&d, &r);
  if (want == b->count) dec_end(&d, &r);
  return (int)want;
}

cray__blob *cray__codec_pin(lua_State *L, cray__lstate *ls, cray__entry *e, const char *fn) {
  cray__blob *b;
  int rc = cray__store_pin(ls->rt->store, e, &b);
  if (rc)
    cray__raise(L, rc == CRAY_ENOMEM ? "out_of_memory" : "object_lost",
                "%s: cannot read the object back from the spill directory %s: %s", fn,
                cray__store_spill_dir(ls->rt->store), cray_strerror(rc));
  return b;
}

int cray__codec_decode_entry(lua_State *L, cray__lstate *ls, cray__entry *e, int max,
                             const char *fn) {
  cray__blob *b = cray__codec_pin(L, ls, e, fn);
  int n = cray__codec_decode(L, ls, b, max);
  cray__store_unpin(e);
  return n;
}

int cray__codec_decode_args(lua_State *L, cray__lstate *ls, cray__blob *b) {
  dec d;
  dec_begin(&d, L, ls, b, b->count);
  cray__mp_reader r = {b->data, b->data + b->len};
  for (uint32_t i = 0; i < b->count; i++) {
    cray__mp_item it;
    next_item(&d, &r, &it);
    if (it.type != CRAY__MP_EXT || it.ext != CRAY__EXT_REF) {
      dec_item(&d, &r, &it);
      continue;
    }
    if (d.nextref >= b->nrefs || it.n != 16)
      cray__raise(L, "serialization", "blob's ref table does not match its contents");
    cray__entry *e = b->refs[d.nextref++];
    if (cray__entry_state(e) != CRAY__READY)
      cray__raise(L, "serialization", "argument %u is an object that is not ready", i + 1);
    if (cray__codec_decode_entry(L, ls, e, 1, "task argument") == 0) lua_pushnil(L);
  }
  dec_end(&d, &r);
  return (int)b->count;
}

/* ==== views ==== */

/* The finalizer of views: drops the view's blob reference. An orphan (its store closed
 * while the view lived) is freed without a store. */
static int view_gc(lua_State *L) {
  const cray__view *v = lua_topointer(L, 1);
  if (v && v->owner)
    cray__blob_release((v->owner->flags & CRAY__BLOB_ORPHAN) ? NULL : v->store, v->owner);
  return 0;
}

void cray__codec_open(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, CRAY__REG_FFI);
  lua_pushcfunction(L, view_gc);
  lua_setfield(L, -2, "release");
  lua_pop(L, 1);
}
