/*
 * test_codec.c: the Lua value codec (bindings/codec.c), on its own: round trips of every
 * type, refusals and the paths they name, the depth limit, agreement with msgpack-c in
 * both directions, and malformed input (truncations, corruptions, random bytes), which
 * must raise and never crash; run it under -fsanitize=address,undefined too, and with
 * CRAY_FUZZ_ROUNDS=2000000 for a longer soak (CRAY_CODEC_BENCH=1 prints throughput).
 *
 * The state is set up as luaopen_cray would, from the pieces the codec reads: the
 * cray__lstate, the ObjectRef and error metatables, the classes and C-function-name
 * tables, and the FFI helpers loaded from lua/ffi_codec.lua in the source tree. Most
 * checks are short Lua chunks calling `codec.*`, C functions defined here.
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../bindings/codec.h"
#include "../../bindings/objref.h"
#include "../../runtime/alloc.h"
#include "../../runtime/runtime.h"
#include "check.h"

static lua_State *L;
static cray__lstate *ls;
static cray_runtime *rt;

/* ---- codec.* for the Lua chunks ---- */

/* A blob of what the last encode wrote, with its refs. */
static cray__blob *blob_of_encoded(uint32_t count, uint32_t flags) {
  return cray__codec_blob(ls, rt->store, count, flags);
}

static int decode_inner(lua_State *L1) {
  cray__blob *b = lua_touserdata(L1, 1);
  int max = (int)lua_tointeger(L1, 2);
  lua_settop(L1, 0);
  return cray__codec_decode(L1, ls, b, max);
}

/* Decodes b in a protected call, releases it, and rethrows any error: returns the number
 * of values pushed. */
static int decode_and_release(lua_State *L1, cray__blob *b, int max) {
  int base = lua_gettop(L1);
  lua_pushcfunction(L1, decode_inner);
  lua_pushlightuserdata(L1, b);
  lua_pushinteger(L1, max);
  int rc = lua_pcall(L1, 2, LUA_MULTRET, 0);
  cray__blob_release(rt->store, b);
  if (rc) return lua_error(L1);
  return lua_gettop(L1) - base;
}

/* codec.encode(...) -> bytes, nrefs */
static int t_encode(lua_State *L1) {
  int n = lua_gettop(L1);
  cray__codec_encode(L1, ls, 1, n, n == 1 ? "value" : "args");
  uint32_t nrefs = ls->nrefs;
  cray__blob *b = blob_of_encoded(1, 0);
  lua_pushlstring(L1, (const char *)b->data, b->len);
  cray__blob_release(rt->store, b);
  lua_pushinteger(L1, nrefs);
  return 2;
}

/* codec.decode(bytes [, trusted [, count [, max]]]) -> values (no refs) */
static int t_decode(lua_State *L1) {
  size_t n;
  const char *s = luaL_checklstring(L1, 1, &n);
  uint32_t flags = lua_toboolean(L1, 2) ? CRAY__BLOB_TRUSTED : 0;
  uint32_t count = (uint32_t)luaL_optinteger(L1, 3, 1);
  int max = (int)luaL_optinteger(L1, 4, -1);
  cray__blob *b = cray__blob_new((const uint8_t *)s, n, count, NULL, 0, flags);
  lua_settop(L1, 0);
  return decode_and_release(L1, b, max);
}

/* codec.roundtrip(...) -> the same values, through a trusted blob with refs */
static int t_roundtrip(lua_State *L1) {
  int n = lua_gettop(L1);
  cray__codec_encode(L1, ls, 1, n, n == 1 ? "value" : "args");
  cray__blob *b = blob_of_encoded((uint32_t)n, CRAY__BLOB_TRUSTED);
  lua_settop(L1, 0);
  return decode_and_release(L1, b, -1);
}

/* codec.framed(bytes) -> whether msgpack-c reads the bytes as exactly one item */
static int unpack_one(msgpack_unpacked *u, const char *data, size_t len);
static int t_framed(lua_State *L1) {
  size_t n;
  const char *s = luaL_checklstring(L1, 1, &n);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  lua_pushboolean(L1, unpack_one(&u, s, n));
  msgpack_unpacked_destroy(&u);
  return 1;
}

/* codec.put(v) -> ObjectRef, as cray.put does */
static int t_put(lua_State *L1) {
  cray__codec_encode(L1, ls, 1, 1, "value");
  cray__blob *b = blob_of_encoded(1, CRAY__BLOB_TRUSTED);
  cray__entry *e = cray__store_insert(rt->store, cray__id_new(&rt->ids), b);
  cray__objref_push(L1, ls, e);
  return 1;
}

static int t_lightud(lua_State *L1) {
  lua_pushlightuserdata(L1, &ls);
  return 1;
}

/* ---- set-up ---- */

static void add_cnames(int cnames, int tbl, const char *prefix) {
  lua_pushnil(L);
  while (lua_next(L, tbl)) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_iscfunction(L, -1)) {
      lua_pushfstring(L, "%s%s", prefix, lua_tostring(L, -2));
      lua_pushvalue(L, -1);
      lua_pushvalue(L, -3);
      lua_rawset(L, cnames); /* name -> function */
      lua_rawset(L, cnames); /* function -> name */
    } else {
      lua_pop(L, 1);
    }
  }
}

static void fill_cnames(void) {
  static const char *const libs[] = {"string", "table", "math", "io", "os", "coroutine",
                                     "debug", "package", "bit", "jit", "ffi", NULL};
  lua_getglobal(L, "require");
  lua_pushliteral(L, "ffi");
  lua_call(L, 1, 0);
  lua_newtable(L);
  int cnames = lua_gettop(L);
  add_cnames(cnames, LUA_GLOBALSINDEX, "");
  lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
  for (int i = 0; libs[i]; i++) {
    lua_getfield(L, -1, libs[i]);
    if (lua_istable(L, -1)) {
      lua_pushfstring(L, "%s.", libs[i]);
      add_cnames(cnames, lua_gettop(L) - 1, lua_tostring(L, -1));
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, CRAY__REG_CNAMES);
}

/* lua/ffi_codec.lua, found from this file's own path (spec/c/test_codec.c). */
static void load_ffi_helpers(void) {
  char path[1024];
  const char *self = __FILE__, *tail = strstr(self, "spec/c/test_codec.c");
  snprintf(path, sizeof path, "%.*slua/ffi_codec.lua", tail ? (int)(tail - self) : 0, self);
  const char *env = getenv("CRAY_SRC");
  if (env) snprintf(path, sizeof path, "%s/lua/ffi_codec.lua", env);
  if (luaL_loadfile(L, path) || lua_pcall(L, 0, 1, 0)) {
    fprintf(stderr, "cannot load %s: %s\n", path, lua_tostring(L, -1));
    exit(2);
  }
  lua_setfield(L, LUA_REGISTRYINDEX, CRAY__REG_FFI);
}

/* Lua helpers shared by the chunks below. */
static const char prelude[] =
    "ffi = require 'ffi'\n"
    "function deq(a, b, seen)\n"
    "  if a ~= a and b ~= b then return true end\n"
    "  if type(a) ~= type(b) then return false end\n"
    "  if type(a) == 'cdata' then return a == b end\n"
    "  if type(a) ~= 'table' then return a == b end\n"
    "  seen = seen or {}\n"
    "  if seen[a] then return seen[a] == b end\n"
    "  seen[a] = b\n"
    "  if getmetatable(a) ~= getmetatable(b) then return false end\n"
    "  for k, v in pairs(a) do\n"
    "    local w = b[k]\n"
    "    if type(k) == 'table' then\n"
    "      w = nil\n"
    "      for k2, v2 in pairs(b) do\n"
    "        if type(k2) == 'table' and deq(k, k2, seen) then w = v2 end\n"
    "      end\n"
    "    end\n"
    "    if not deq(v, w, seen) then return false end\n"
    "  end\n"
    "  for k in pairs(b) do if type(k) ~= 'table' and a[k] == nil then return false end end\n"
    "  return true\n"
    "end\n"
    "function same(v) local w = codec.roundtrip(v); assert(deq(v, w), tostring(v)); return w end\n"
    "function hex(s) return (s:gsub('.', function(c) return ('%02x'):format(c:byte()) end)) end\n"
    "function refusal(expected, ...)\n"
    "  local ok, e = pcall(codec.encode, ...)\n"
    "  assert(not ok, 'expected a refusal: ' .. expected)\n"
    "  assert(type(e) == 'table', tostring(e))\n"
    "  assert(e.kind == 'serialization', tostring(e.kind))\n"
    "  assert(e.message == expected, 'got: ' .. tostring(e.message))\n"
    "end\n"
    "function decode_error(pattern, ...)\n"
    "  local ok, e = pcall(codec.decode, ...)\n"
    "  assert(not ok, 'expected a decode error: ' .. pattern)\n"
    "  assert(type(e) == 'table' and e.kind == 'serialization', tostring(e))\n"
    "  assert(e.message:find(pattern, 1, true), 'got: ' .. e.message)\n"
    "end\n";

static void setup(void) {
  L = luaL_newstate();
  luaL_openlibs(L);
  ls = lua_newuserdata(L, sizeof *ls);
  memset(ls, 0, sizeof *ls);
  cray__buf_init(&ls->scratch);
  lua_setfield(L, LUA_REGISTRYINDEX, CRAY__REG_LSTATE);
  if (cray_open(&rt, NULL) != 0) exit(2);
  ls->rt = rt;
  ls->epoch = rt->ids.epoch;
  cray__objref_open(L);
  lua_newtable(L); /* error metatable */
  lua_pushvalue(L, -1);
  lua_setfield(L, -2, "__index");
  lua_setfield(L, LUA_REGISTRYINDEX, CRAY__REG_ERROR_MT);
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, CRAY__REG_CLASSES);
  fill_cnames();
  load_ffi_helpers();
  cray__codec_open(L);

  static const luaL_Reg fns[] = {{"encode", t_encode},       {"decode", t_decode},
                                 {"roundtrip", t_roundtrip}, {"put", t_put},
                                 {"lightud", t_lightud},     {"framed", t_framed},
                                 {NULL, NULL}};
  lua_newtable(L);
  for (const luaL_Reg *r = fns; r->name; r++) {
    lua_pushcfunction(L, r->func);
    lua_setfield(L, -2, r->name);
  }
  lua_setglobal(L, "codec");
  lua_getfield(L, LUA_REGISTRYINDEX, CRAY__REG_CLASSES);
  lua_setglobal(L, "classes");
  lua_getfield(L, LUA_REGISTRYINDEX, CRAY__REG_ERROR_MT);
  lua_setglobal(L, "Error");
  if (luaL_dostring(L, prelude)) {
    fprintf(stderr, "prelude: %s\n", lua_tostring(L, -1));
    exit(2);
  }
}

static void teardown(void) {
  cray__buf buf = ls->scratch; /* luaopen_cray's __gc would free these; the test does */
  cray__entry **refs = ls->refs;
  cray__splice *splices = ls->splices;
  lua_close(L);
  cray__buf_free(&buf);
  cray__free(refs);
  cray__free(splices);
  cray_close(rt);
}

/* Runs a Lua chunk; 1 when it ran without error (its failure is printed). */
static int run_lua_at(const char *code, int line) {
  int top = lua_gettop(L);
  int ok = luaL_loadstring(L, code) == 0 && lua_pcall(L, 0, 0, 0) == 0;
  if (!ok) {
    const char *msg = lua_tostring(L, -1);
    if (!msg && lua_istable(L, -1)) {
      lua_getfield(L, -1, "message");
      msg = lua_tostring(L, -1);
    }
    fprintf(stderr, "lua error (chunk at line %d): %s\n", line, msg ? msg : "?");
  }
  lua_settop(L, top);
  return ok;
}
#define LUA_CHECK(code) CHECK(run_lua_at(code, __LINE__))

/* ---- round trips ---- */

static void test_scalars(void) {
  LUA_CHECK("for _, v in ipairs{0, 1, 127, 128, 255, 256, 65535, 65536, 2^32 - 1, 2^32,\n"
         "    2^53, -1, -32, -33, -128, -129, -32768, -32769, -2^31, -2^31 - 1, -2^53,\n"
         "    0.5, -1.25, 1e300, -1e-300, 2^60, -2^63, 2^64, math.huge, -math.huge} do\n"
         "  local w = codec.roundtrip(v)\n"
         "  assert(type(w) == 'number' and w == v, tostring(v))\n"
         "end\n"
         "assert(codec.roundtrip(nil) == nil and select('#', codec.roundtrip(nil)) == 1)\n"
         "assert(codec.roundtrip(true) == true and codec.roundtrip(false) == false)\n"
         "local nan = codec.roundtrip(0/0); assert(nan ~= nan)\n"
         "assert(1 / codec.roundtrip(-0.0) == -math.huge)\n");
  /* The smallest form at every width boundary, and floats for what is not an int. */
  LUA_CHECK("local want = {\n"
         "  [0] = '00', [127] = '7f', [128] = 'cc80', [255] = 'ccff', [256] = 'cd0100',\n"
         "  [65535] = 'cdffff', [65536] = 'ce00010000', [2^32 - 1] = 'ceffffffff',\n"
         "  [2^32] = 'cf0000000100000000', [-1] = 'ff', [-32] = 'e0', [-33] = 'd0df',\n"
         "  [-128] = 'd080', [-129] = 'd1ff7f', [-32768] = 'd18000',\n"
         "  [-32769] = 'd2ffff7fff', [-2^31] = 'd280000000',\n"
         "  [-2^31 - 1] = 'd3ffffffff7fffffff', [2^53] = 'cf0020000000000000',\n"
         "  [0.5] = 'cb3fe0000000000000', [2^53 + 2] = 'cb4340000000000001',\n"
         "}\n"
         "for v, h in pairs(want) do\n"
         "  assert(hex(codec.encode(v)) == h, v .. ': ' .. hex(codec.encode(v)))\n"
         "end\n"
         "assert(hex(codec.encode(-0.0)) == 'cb8000000000000000')\n"
         "assert(hex(codec.encode(nil)) == 'c0' and hex(codec.encode(true)) == 'c3')\n"
         "assert(hex(codec.encode(false)) == 'c2')\n"
         "assert(codec.encode(0/0):byte(1) == 0xcb and codec.encode(math.huge):byte(1) == 0xcb)\n");
}

static void test_strings(void) {
  LUA_CHECK("for _, n in ipairs{0, 1, 31, 32, 255, 256, 65535, 65536, 1000000} do\n"
         "  local s = ('\\0\\1xyz\\255'):rep(n):sub(1, n)\n"
         "  assert(#s == n)\n"
         "  assert(codec.roundtrip(s) == s, n)\n"
         "end\n"
         "assert(hex(codec.encode('')) == 'a0')\n"
         "assert(codec.encode(('x'):rep(31)):byte(1) == 0xbf)\n"
         "assert(hex(codec.encode(('x'):rep(32))):sub(1, 4) == 'd920')\n"
         "assert(hex(codec.encode(('x'):rep(256))):sub(1, 6) == 'da0100')\n"
         "assert(hex(codec.encode(('x'):rep(65536))):sub(1, 10) == 'db00010000')\n");
}

static void test_tables(void) {
  LUA_CHECK("assert(hex(codec.encode({})) == '90')\n"
         "assert(hex(codec.encode({1, 2, 3})) == '93010203')\n"
         "assert(hex(codec.encode({x = 1})) == '81a17801')\n"
         "same({1, 2, 3}); same({{}, {{}}, {1, {2, {3}}}})\n"
         "same({[1] = 'a', [3] = 'c'}); same({[2] = 'b'}); same({[0] = 0, 1})\n"
         "same({[true] = 1, [false] = 0, [2.5] = 'x', k = {}, [-1] = true, [1e300] = 1})\n"
         "same({a = {b = {c = {d = 'e'}}}, list = {1, 2, {x = 'y'}}})\n"
         "local t = codec.roundtrip({[{1, 2}] = 'table key'})\n"
         "local k = next(t); assert(type(k) == 'table' and k[2] == 2 and t[k] == 'table key')\n"
         "-- holes and extra keys make a map; exactly 1..n an array, in any insertion order\n"
         "assert(codec.encode({1, nil, 3}):byte(1) == 0x82)\n"
         "assert(codec.encode({1, 2, x = 3}):byte(1) == 0x83)\n"
         "local r = {}; r[3] = 'c'; r[1] = 'a'; r[2] = 'b'\n"
         "assert(hex(codec.encode(r)) == '93a161a162a163')\n"
         "-- sizes at header boundaries\n"
         "for _, n in ipairs{15, 16, 65535, 65536} do\n"
         "  local a, m = {}, {}\n"
         "  for i = 1, n do a[i] = i; m['k' .. i] = i end\n"
         "  same(a); same(m)\n"
         "end\n"
         "local sixteen = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}\n"
         "assert(hex(codec.encode(sixteen)):sub(1, 6) == 'dc0010')\n");
  /* About 1 MB of nested tables. */
  LUA_CHECK("local big = {}\n"
         "for i = 1, 20000 do\n"
         "  big[i] = {i, tostring(i) .. ('.'):rep(20), {x = i / 3, y = {i % 7 == 0, 'z'}}}\n"
         "end\n"
         "big.meta = {name = 'big', n = 20000}\n"
         "local bytes = codec.encode(big)\n"
         "assert(#bytes > 900000, #bytes)\n"
         "same(big)\n");
  LUA_CHECK("local vals = {codec.roundtrip(1, 'two', {3}, nil, false)}\n"
         "assert(vals[1] == 1 and vals[2] == 'two' and vals[3][1] == 3 and vals[4] == nil)\n"
         "assert(select('#', codec.roundtrip(1, nil, nil)) == 3)\n"
         "-- decode only the first `max` of several values\n"
         "local bytes = codec.encode(1, 2, 3)\n"
         "assert(select('#', codec.decode(bytes, false, 3, 1)) == 1)\n"
         "assert(select('#', codec.decode(bytes, false, 3, -1)) == 3)\n"
         "assert(select('#', codec.decode(bytes, false, 3, 0)) == 0)\n");
}

static void test_functions(void) {
  LUA_CHECK("local base, names = 10, {'a', 'b'}\n"
         "local f = function(x) return base + x, names[2], string.format('%d', x) end\n"
         "local g = codec.roundtrip(f)\n"
         "assert(g ~= f)\n"
         "local a, b, c = g(5)\n"
         "assert(a == 15 and b == 'b' and c == '5')\n"
         "local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end\n"
         "assert(codec.roundtrip(fib)(20) == 6765)\n"
         "-- upvalues copied by value: the copy has its own\n"
         "local n = 0\n"
         "local function inc() n = n + 1; return n end\n"
         "local inc2 = codec.roundtrip(inc)\n"
         "assert(inc2() == 1 and inc2() == 2 and n == 0)\n"
         "-- mutual recursion through a table\n"
         "local M = {}\n"
         "function M.even(k) if k == 0 then return true end return M.odd(k - 1) end\n"
         "function M.odd(k) if k == 0 then return false end return M.even(k - 1) end\n"
         "local M2 = codec.roundtrip(M)\n"
         "assert(M2.even(10) == true and M2.odd(7) == true and M2.even ~= M.even)\n"
         "-- functions nested in tables and tables in upvalues\n"
         "local cfg = {scale = 3, fns = {function(v) return v * 2 end}}\n"
         "local h = function(v) return cfg.fns[1](v) * cfg.scale end\n"
         "assert(codec.roundtrip({h = h}).h(7) == 42)\n"
         "-- a function with no upvalues and one with a nil upvalue\n"
         "assert(codec.roundtrip(function() return 'k' end)() == 'k')\n"
         "local nothing\n"
         "assert(codec.roundtrip(function() return nothing end)() == nil)\n");
  /* Modules, the globals and standard C functions travel by name. */
  LUA_CHECK("local s, g, fmt = string, _G, string.format\n"
         "local f = function(x) return s.upper(x), g.type(x), fmt('<%s>', x), print end\n"
         "local bytes = codec.encode(f)\n"
         "assert(bytes:find('string', 1, true) and bytes:find('string.format', 1, true))\n"
         "local a, b, c, d = codec.roundtrip(f)('hi')\n"
         "assert(a == 'HI' and b == 'string' and c == '<hi>' and d == print)\n"
         "assert(codec.roundtrip(string) == string and codec.roundtrip(_G) == _G)\n"
         "assert(codec.roundtrip(ffi) == ffi and codec.roundtrip(math.floor) == math.floor)\n"
         "assert(hex(codec.encode(_G)) == 'c70008')\n"
         "assert(hex(codec.encode(string)) == 'c706' .. '07' .. hex('string'))\n"
         "assert(hex(codec.encode(print)) == 'c705' .. '09' .. hex('print'))\n"
         "-- a module loaded after the name map was built is still found from a function\n"
         "codec.encode({})\n"
         "package.loaded['late.mod'] = {answer = 42}\n"
         "local m = package.loaded['late.mod']\n"
         "local late = function() return m.answer end\n"
         "assert(codec.encode(late):find('late.mod', 1, true))\n"
         "assert(codec.roundtrip(late)() == 42)\n"
         "assert(codec.roundtrip(m) == m)\n"
         "-- untrusted blobs find loaded modules but load none\n"
         "assert(codec.decode(codec.encode(string)) == string)\n"
         "decode_error(\"module 'no.such.mod' is not loaded\", '\\xc7\\x0b\\x07no.such.mod')\n"
         "local ok, e = pcall(codec.decode, '\\xc7\\x0b\\x07no.such.mod', true)\n"
         "assert(not ok and tostring(e):find('no.such.mod', 1, true))\n"
         "decode_error(\"C function 'string.nope' is not available\",\n"
         "             '\\xc7\\x0b\\x09string.nope')\n");
  /* Bytecode loads only from trusted blobs. */
  LUA_CHECK("local bytes = codec.encode(function() return 1 end)\n"
         "assert(codec.decode(bytes, true)() == 1)\n"
         "decode_error('refusing to load Lua bytecode from an untrusted blob', bytes)\n"
         "decode_error('refusing to load Lua bytecode from an untrusted blob',\n"
         "             (codec.encode({1, {f = function() end}})))\n");
}

static void test_cycles(void) {
  LUA_CHECK("local t = {name = 'loop'}\n"
         "t.self = t\n"
         "assert(hex(codec.encode(t)):find('a473656c66d40d00', 1, true))\n"
         "local u = codec.roundtrip(t)\n"
         "assert(u.self == u and u.name == 'loop')\n"
         "-- deeper cycles, a cycle through a key, and a table shared but not cyclic\n"
         "local a = {b = {c = {}}}\n"
         "a.b.c.back, a.b.c.mid = a, a.b\n"
         "a[a] = 'self key'\n"
         "local x = codec.roundtrip(a)\n"
         "assert(x.b.c.back == x and x.b.c.mid == x.b and x[x] == 'self key')\n"
         "local shared = {1}\n"
         "local y = codec.roundtrip({shared, shared})\n"
         "assert(y[1][1] == 1 and y[2][1] == 1 and y[1] ~= y[2])\n"
         "-- a function whose upvalue table holds the function\n"
         "local obj = {}\n"
         "local function get() return obj end\n"
         "obj.get = get\n"
         "local o2 = codec.roundtrip(obj)\n"
         "assert(o2.get() == o2)\n"
         "-- a backref in a decoded blob pointing nowhere\n"
         "decode_error('backref to no enclosing table', '\\x91\\xd4\\x0d\\x01')\n"
         "decode_error('backref to no enclosing table', '\\xd4\\x0d\\x00')\n");
}

static void test_classes_and_errors(void) {
  LUA_CHECK("local Point = {}; Point.__index = Point\n"
         "function Point.norm2(p) return p.x * p.x + p.y * p.y end\n"
         "classes['spec.Point'], classes[Point] = Point, 'spec.Point'\n"
         "local p = codec.roundtrip(setmetatable({x = 3, y = 4}, Point))\n"
         "assert(getmetatable(p) == Point and p:norm2() == 25)\n"
         "local list = codec.roundtrip({setmetatable({1, 2}, Point), setmetatable({}, Point)})\n"
         "assert(getmetatable(list[1]) == Point and list[1][2] == 2)\n"
         "local c = setmetatable({}, Point); c.me = c\n"
         "local c2 = codec.roundtrip(c); assert(c2.me == c2 and getmetatable(c2) == Point)\n"
         "local bytes = codec.encode(setmetatable({x = 1}, Point))\n"
         "classes['spec.Point'], classes[Point] = nil, nil\n"
         "decode_error(\"class 'spec.Point' is not registered in this state\", bytes)\n"
         "refusal('value: cannot serialize a table with a metatable that is not registered '\n"
         "        .. '(cray.register_class)', setmetatable({}, Point))\n");
  LUA_CHECK("local cause = setmetatable({kind = 'timeout', message = 'slow'}, Error)\n"
         "local e = setmetatable({kind = 'task_error', message = 'boom', cause = cause,\n"
         "                        value = {1, 2}}, Error)\n"
         "local e2 = codec.roundtrip(e)\n"
         "assert(getmetatable(e2) == Error and getmetatable(e2.cause) == Error)\n"
         "assert(e2.message == 'boom' and e2.cause.kind == 'timeout' and e2.value[2] == 2)\n"
         "local bytes = codec.encode(setmetatable({}, Error))\n"
         "assert(hex(bytes) == 'c90000000105' .. '80', hex(bytes))\n");
}

/* Strings and FFI arrays from CRAY__SPLICE_MIN bytes are spliced into the blob, the
 * scratch buffer grows past 64 KiB and is let go past 1 MiB: at sizes around each, every
 * extension that holds values (function, error, class) frames what it holds, with every
 * other extension type among its contents, and reads back the same. */
static void test_large_in_extensions(void) {
  LUA_CHECK("local Box = {}; Box.__index = Box\n"
         "classes['spec.Box'], classes[Box] = Box, 'spec.Box'\n"
         "local ref = codec.put('target')\n"
         "for _, m in ipairs{4096, 65536, 1048576} do for n = m - 1, m + 1 do\n"
         "  local s = ('0123456789abcdef'):rep(n / 16 + 1):sub(1, n)\n"
         "  local a = ffi.new('uint8_t[?]', n)\n"
         "  for i = 0, n - 1, 97 do a[i] = i % 251 end\n"
         "  local function same_array(b)\n"
         "    return #b == n and ffi.string(b.data, n) == ffi.string(a, n)\n"
         "  end\n"
         "  local small = {ref = ref, i = -5LL, u = 7ULL, mod = string, g = _G,\n"
         "                 cf = string.format}\n"
         "  small.me = small\n"
         "  local err = setmetatable({kind = 'runtime', message = s, value = a,\n"
         "                           small = small}, Error)\n"
         "  local box = setmetatable({s = s, a = a, err = err, small = small}, Box)\n"
         "  local f = function() return s, a, box, small end\n"
         "  for _, v in ipairs{err, box, f, {f, box, err, s}} do\n"
         "    assert(codec.framed((codec.encode(v))), n)\n"
         "  end\n"
         "  local e2 = codec.roundtrip(err)\n"
         "  assert(getmetatable(e2) == Error and e2.message == s and same_array(e2.value), n)\n"
         "  local b2 = codec.roundtrip(box)\n"
         "  assert(getmetatable(b2) == Box and b2.s == s and same_array(b2.a), n)\n"
         "  assert(b2.err.message == s and same_array(b2.err.value), n)\n"
         "  local s2, a2, box2, small2 = codec.roundtrip(f)()\n"
         "  assert(s2 == s and same_array(a2) and box2.err.message == s, n)\n"
         "  for _, t in ipairs{small2, b2.small, e2.small} do\n"
         "    assert(t.ref == ref and t.i == -5LL and t.u == 7ULL and t.mod == string, n)\n"
         "    assert(t.g == _G and t.cf == string.format and t.me == t, n)\n"
         "  end\n"
         "end end\n"
         "classes['spec.Box'], classes[Box] = nil, nil\n");
}

static void test_cdata(void) {
  LUA_CHECK("for _, v in ipairs{9007199254740993LL, -1LL, 0LL, 0x7fffffffffffffffLL,\n"
         "                    -0x8000000000000000LL} do\n"
         "  local w = codec.roundtrip(v)\n"
         "  assert(type(w) == 'cdata' and ffi.istype('int64_t', w) and w == v, tostring(v))\n"
         "end\n"
         "for _, v in ipairs{0xffffffffffffffffULL, 1ULL, 0x8000000000000000ULL} do\n"
         "  local w = codec.roundtrip(v)\n"
         "  assert(ffi.istype('uint64_t', w) and w == v, tostring(v))\n"
         "end\n"
         "assert(hex(codec.encode(-2LL)) == 'd70afffffffffffffffe')\n"
         "assert(hex(codec.encode(258ULL)) == 'd70b0000000000000102')\n");
  LUA_CHECK("local codes = {int8_t = 1, uint8_t = 2, int16_t = 3, uint16_t = 4, int32_t = 5,\n"
         "               uint32_t = 6, int64_t = 7, uint64_t = 8, float = 9, double = 10}\n"
         "for ct, code in pairs(codes) do\n"
         "  for _, spec in ipairs{ct .. '[?]', ct .. '[5]'} do\n"
         "    local a = spec:find('?', 1, true) and ffi.new(spec, 5) or ffi.new(spec)\n"
         "    for i = 0, 4 do a[i] = i * 3 + 1 end\n"
         "    local bytes = codec.encode(a)\n"
         "    -- c7 NN 06, then the code in the low 4 bits and the padding in the high 4\n"
         "    local pad = bit.rshift(bytes:byte(4), 4)\n"
         "    assert(bytes:byte(3) == 6 and bit.band(bytes:byte(4), 15) == code, spec)\n"
         "    assert((4 + pad) % 16 == 0, spec) -- the elements start 16-byte aligned\n"
         "    assert(bytes:byte(2) == 1 + pad + ffi.sizeof(a), spec)\n"
         "    local b = codec.roundtrip(a)\n"
         "    assert(ffi.istype('cray_view_' .. ct, b), spec)\n"
         "    assert(#b == 5 and tonumber(ffi.cast('uintptr_t', b.data)) % 16 == 0, spec)\n"
         "    for i = 0, 4 do assert(a[i] == b[i], spec) end\n"
         "  end\n"
         "end\n"
         "local z = codec.roundtrip(ffi.new('double[?]', 0)); assert(#z == 0)\n"
         "local c = codec.roundtrip(ffi.new('const int32_t[3]', {7, 8, 9})); assert(c[2] == 9)\n"
         "local neg = codec.roundtrip(ffi.new('int16_t[2]', {-2, -32768}))\n"
         "assert(neg[0] == -2 and neg[1] == -32768)\n"
         "local big = ffi.new('double[?]', 200000)\n"
         "for i = 0, 199999 do big[i] = i / 7 end\n"
         "local big2 = codec.roundtrip({arr = big}).arr\n"
         "assert(#big2 == 200000 and big2[199999] == 199999 / 7)\n"
         "-- a view travels again as the array it shows\n"
         "local again = codec.roundtrip(neg)\n"
         "assert(ffi.istype('cray_view_int16_t', again) and #again == 2 and again[1] == -32768)\n"
         "-- and reads only within its bounds\n"
         "assert(not pcall(function() return neg[2] end))\n"
         "assert(not pcall(function() return neg[-1] end))\n"
         "assert(not pcall(function() neg[0] = 1 end))\n"
         "local m = neg:copy(); m[0] = 5; assert(m[0] == 5 and neg[0] == -2)\n"
         "decode_error('FFI array padding past its payload', '\\xd4\\x06\\x2a')\n"
         "decode_error('unknown FFI element code 11', '\\xd5\\x06\\x0b\\x00')\n"
         "decode_error('FFI array of 3 bytes for 2-byte elements',\n"
         "             '\\xd6\\x06\\x03\\x01\\x02\\x03')\n"
         "decode_error('a 64-bit integer is 8 bytes', '\\xd6\\x0a\\x00\\x00\\x00\\x01')\n");
}

static void test_objrefs(void) {
  LUA_CHECK("local r = codec.put(42)\n"
         "local bytes, nrefs = codec.encode({r, {r}, x = r})\n"
         "assert(nrefs == 3)\n"
         "local t = codec.roundtrip({r, {r}})\n"
         "assert(t[1] == r and t[2][1] == r and t[1]:hex() == r:hex())\n"
         "local r2 = codec.put({1, r})\n"
         "local a, n = codec.encode(r2)\n"
         "assert(n == 1 and hex(a) == 'd801' .. r2:hex())\n"
         "assert(select(2, codec.encode(1)) == 0)\n"
         "-- a blob whose ref table does not hold the refs its bytes name\n"
         "decode_error(\"blob's ref table does not match its contents\", a)\n");
  /* A ref table that names other objects than the bytes do. */
  lua_settop(L, 0);
  CHECK(luaL_dostring(L, "return codec.put(1), codec.put(2)") == 0);
  cray__entry *one = cray__objref_test(L, ls, 1), *two = cray__objref_test(L, ls, 2);
  lua_pushvalue(L, 1);
  cray__codec_encode(L, ls, 3, 1, "value");
  CHECK_EQ(ls->nrefs, 1);
  CHECK(ls->refs[0] == one);
  cray__blob *b = cray__blob_new(ls->scratch.data, ls->scratch.len, 1, &two, 1, 0);
  lua_pushcfunction(L, decode_inner);
  lua_pushlightuserdata(L, b);
  lua_pushinteger(L, -1);
  CHECK(lua_pcall(L, 2, LUA_MULTRET, 0) != 0);
  cray__blob_release(rt->store, b);
  /* More refs listed than the bytes use. */
  cray__entry *both[2] = {one, two};
  b = cray__blob_new(ls->scratch.data, ls->scratch.len, 1, both, 2, 0);
  lua_pushcfunction(L, decode_inner);
  lua_pushlightuserdata(L, b);
  lua_pushinteger(L, -1);
  CHECK(lua_pcall(L, 2, LUA_MULTRET, 0) != 0);
  cray__blob_release(rt->store, b);
  lua_settop(L, 0);
}

/* ---- refusals ---- */

static void test_refusals(void) {
  LUA_CHECK("refusal('value.conn: cannot serialize userdata', {conn = io.stdout})\n"
         "refusal('value[2].x: cannot serialize userdata', {1, {x = io.stderr}})\n"
         "refusal('value[\"a key\"]: cannot serialize userdata', {['a key'] = io.stdout})\n"
         "refusal('value[\"end\"]: cannot serialize userdata', {['end'] = io.stdout})\n"
         "refusal('value[\"q\\\\\"\\\\n\"]: cannot serialize userdata', {['q\"\\n'] = io.stdout})\n"
         "refusal('value[2.5]: cannot serialize userdata', {[2.5] = io.stdout})\n"
         "refusal('value[-3]: cannot serialize userdata', {[-3] = io.stdout})\n"
         "refusal('value[true]: cannot serialize userdata', {[true] = io.stdout})\n"
         "refusal('value[<table key>]: cannot serialize userdata', {[{}] = io.stdout})\n"
         "refusal('value.<key>: cannot serialize userdata', {[io.stdout] = 1})\n"
         "refusal('value.<key>.k: cannot serialize userdata', {[{k = io.stdout}] = 1})\n"
         "refusal('value: cannot serialize userdata', io.stdout)\n"
         "refusal('args[2].x: cannot serialize userdata', 1, {x = io.stdout})\n"
         "local conn = io.stdout\n"
         "local f = function() return conn end\n"
         "refusal('value.<upvalue conn>: cannot serialize userdata', f)\n"
         "local cfg = {db = {conn}}\n"
         "refusal('value.run.<upvalue cfg>.db[1]: cannot serialize userdata',\n"
         "        {run = function() return cfg end})\n"
         "refusal('value.co: cannot serialize a coroutine', {co = coroutine.create(print)})\n"
         "refusal('value.p: cannot serialize a light userdata', {p = codec.lightud()})\n"
         "refusal('value.f: cannot serialize C function (only standard-library functions '\n"
         "        .. 'travel)', {f = codec.encode})\n"
         "refusal('value.it: cannot serialize C function (only standard-library functions '\n"
         "        .. 'travel)', {it = ('x'):gmatch('.')})\n"
         "refusal('value.obj: cannot serialize a table with a metatable that is not '\n"
         "        .. 'registered (cray.register_class)', {obj = setmetatable({}, {})})\n"
         "ffi.cdef 'struct codec_test { int a; };'\n"
         "refusal('value.p: cannot serialize cdata<struct codec_test>',\n"
         "        {p = ffi.new('struct codec_test')})\n"
         "refusal('value.p: cannot serialize cdata<struct codec_test *>',\n"
         "        {p = ffi.cast('struct codec_test *', nil)})\n"
         "refusal('value.m: cannot serialize cdata<int [2][2]>', {m = ffi.new('int[2][2]')})\n"
         "refusal('value[1]: cannot serialize cdata<int>', {ffi.new('int', 1)})\n"
         "-- a refused put leaves the encoder ready for the next\n"
         "assert(hex(codec.encode({1})) == '9101')\n");
  /* The depth limit: 128 levels pass, 129 are refused, 10000 are refused quickly. */
  LUA_CHECK("local function nest(n) local t = {} for _ = 2, n do t = {t} end return t end\n"
         "same(nest(128))\n"
         "local ok, e = pcall(codec.encode, nest(129))\n"
         "assert(not ok and e.kind == 'serialization')\n"
         "assert(e.message:find(': cannot serialize: nesting deeper than 128 levels$'),\n"
         "       e.message)\n"
         "assert(e.message:find('^value%[1%]%[1%]'), e.message)\n"
         "assert(e.message:find('...', 1, true) and #e.message < 300, e.message)\n"
         "local ok2, e2 = pcall(codec.encode, nest(10000))\n"
         "assert(not ok2 and e2.message:find('nesting deeper than 128 levels', 1, true))\n"
         "-- functions count as levels too\n"
         "local f = function() return 1 end\n"
         "for _ = 1, 130 do local g = f; f = function() return g() end end\n"
         "local ok3, e3 = pcall(codec.encode, f)\n"
         "assert(not ok3 and e3.message:find('^value%.<upvalue g>%.<upvalue g>'), e3.message)\n"
         "-- long paths keep their start and their end\n"
         "local t = {a = io.stdout}\n"
         "for _ = 1, 30 do t = {abcdefghij = t} end\n"
         "local ok4, e4 = pcall(codec.encode, t)\n"
         "assert(e4.message:find('^value%.abcdefghij%.abcdefghij.*%.%.%..*%.abcdefghij%.a: '\n"
         "                       .. 'cannot serialize userdata$') and #e4.message < 300,\n"
         "       e4.message)\n"
         "-- a long string key is cut short in the path\n"
         "local k = ('k'):rep(100) .. ' '\n"
         "local ok5, e5 = pcall(codec.encode, {[k] = io.stdout})\n"
         "assert(e5.message ==\n"
         "       'value[\"' .. ('k'):rep(37) .. '...\"]: cannot serialize userdata',\n"
         "       e5.message)\n");
  LUA_CHECK("local deep = ('\\x91'):rep(129) .. '\\xc0'\n"
         "decode_error('nesting deeper than 128 levels', deep)\n"
         "local ok = codec.decode(('\\x91'):rep(128) .. '\\xc0')\n"
         "assert(type(ok) == 'table')\n"
         "decode_error('nesting deeper than 128 levels', ('\\x91'):rep(100000))\n");
}

static void test_malformed_messages(void) {
  LUA_CHECK("decode_error('malformed blob: truncated', '\\xcd\\x01')\n"
         "decode_error('malformed blob: truncated', '')\n"
         "decode_error('malformed blob: invalid MessagePack', '\\xc1')\n"
         "decode_error('array of 4294967295 elements in 0 bytes', '\\xdd\\xff\\xff\\xff\\xff')\n"
         "decode_error('map of 65535 pairs in 1 bytes', '\\xde\\xff\\xff\\x00')\n"
         "decode_error('nil table key', '\\x81\\xc0\\x01')\n"
         "decode_error('NaN table key',\n"
         "             '\\x81\\xcb\\x7f\\xf8\\x00\\x00\\x00\\x00\\x00\\x00\\x01')\n"
         "decode_error('trailing bytes after 1 values', '\\x01\\x02')\n"
         "decode_error('unknown extension type 99', '\\xd4\\x63\\x00')\n"
         "decode_error('unknown extension type -1', '\\xd6\\xff\\x00\\x00\\x00\\x00')\n"
         "decode_error('not supported yet', '\\xd4\\x02\\x00')\n"
         "decode_error('an ObjectRef is 16 bytes', '\\xd4\\x01\\x00')\n"
         "decode_error('the globals extension has no payload', '\\xd4\\x08\\x00')\n"
         "decode_error('a class instance is [name, fields]', '\\xd4\\x0c\\x90')\n"
         "decode_error(\"an error object's payload must be a map\", '\\xd4\\x05\\x90')\n"
         "decode_error('trailing bytes in an error object', '\\xd5\\x05\\x80\\x80')\n");
}

/* ---- agreement with msgpack-c ---- */

static int obj_is_str(const msgpack_object *o, const char *s) {
  return o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
         memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

static int obj_is_uint(const msgpack_object *o, uint64_t v) {
  return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 == v;
}

static int obj_is_int(const msgpack_object *o, int64_t v) {
  return v >= 0 ? obj_is_uint(o, (uint64_t)v)
                : o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && o->via.i64 == v;
}

/* The value of map entry `key`, or NULL. */
static const msgpack_object *map_get(const msgpack_object *m, const char *key) {
  if (m->type != MSGPACK_OBJECT_MAP) return NULL;
  for (uint32_t i = 0; i < m->via.map.size; i++)
    if (obj_is_str(&m->via.map.ptr[i].key, key)) return &m->via.map.ptr[i].val;
  return NULL;
}

/* Unpacks exactly one value from data[0..len) into u. */
static int unpack_one(msgpack_unpacked *u, const char *data, size_t len) {
  size_t off = 0;
  return msgpack_unpack_next(u, data, len, &off) == MSGPACK_UNPACK_SUCCESS && off == len;
}

static void test_msgpack_c_reads_ours(void) {
  lua_settop(L, 0);
  if (luaL_dostring(L,
                    "local Point = {}\n"
                    "classes['P'], classes[Point] = Point, 'P'\n"
                    "local cyc = {}; cyc.me = cyc\n"
                    "local up = 5\n"
                    "return {ints = {0, 127, 128, 255, 256, 65535, 65536, 4294967295,\n"
                    "                4294967296, 2^53, -1, -32, -33, -128, -129, -32768,\n"
                    "                -32769, -2147483648, -2147483649, -2^53},\n"
                    "        floats = {0.5, -2.25, 1/0, 2^60},\n"
                    "        str = 'h\\0llo', t = true, f = false, empty = {},\n"
                    "        map = {[1] = 'a', [3] = 'c'},\n"
                    "        i64 = -5LL, u64 = 0xffffffffffffffffULL,\n"
                    "        arr = ffi.new('int16_t[3]', {1, -2, 3}),\n"
                    "        mod = string, g = _G, cf = string.format,\n"
                    "        err = setmetatable({kind = 'timeout'}, Error),\n"
                    "        obj = setmetatable({x = 1}, Point),\n"
                    "        cyc = cyc,\n"
                    "        fn = function() return up end,\n"
                    "        ref = codec.put(1)}\n") != 0) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    CHECK(0);
    return;
  }
  cray__codec_encode(L, ls, 1, 1, "value");
  CHECK_EQ(ls->nrefs, 1);
  cray__blob *blob = blob_of_encoded(1, 0);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  CHECK(unpack_one(&u, (const char *)blob->data, blob->len));
  const msgpack_object *root = &u.data, *o;
  CHECK(root->type == MSGPACK_OBJECT_MAP);

  static const int64_t ints[] = {0,     127,         128,         255,       256,
                                 65535, 65536,       4294967295,  4294967296LL,
                                 1LL << 53, -1,      -32,         -33,       -128,
                                 -129,  -32768,      -32769,      -2147483648LL,
                                 -2147483649LL, -(1LL << 53)};
  CHECK((o = map_get(root, "ints")) && o->type == MSGPACK_OBJECT_ARRAY &&
        o->via.array.size == sizeof ints / sizeof *ints);
  for (size_t i = 0; o && i < o->via.array.size; i++)
    CHECK(obj_is_int(&o->via.array.ptr[i], ints[i]));

  CHECK((o = map_get(root, "floats")) && o->via.array.size == 4);
  if (o) {
    CHECK(o->via.array.ptr[0].type == MSGPACK_OBJECT_FLOAT64 && o->via.array.ptr[0].via.f64 == 0.5);
    CHECK(o->via.array.ptr[1].via.f64 == -2.25);
    CHECK(isinf(o->via.array.ptr[2].via.f64));
    CHECK(o->via.array.ptr[3].type == MSGPACK_OBJECT_FLOAT64 &&
          o->via.array.ptr[3].via.f64 == 1152921504606846976.0);
  }
  CHECK((o = map_get(root, "str")) && o->type == MSGPACK_OBJECT_STR && o->via.str.size == 5 &&
        memcmp(o->via.str.ptr, "h\0llo", 5) == 0);
  CHECK((o = map_get(root, "t")) && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean);
  CHECK((o = map_get(root, "f")) && o->type == MSGPACK_OBJECT_BOOLEAN && !o->via.boolean);
  CHECK((o = map_get(root, "empty")) && o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 0);
  CHECK((o = map_get(root, "map")) && o->type == MSGPACK_OBJECT_MAP && o->via.map.size == 2);

  CHECK((o = map_get(root, "i64")) && o->type == MSGPACK_OBJECT_EXT &&
        o->via.ext.type == CRAY__EXT_INT64 && o->via.ext.size == 8 &&
        memcmp(o->via.ext.ptr, "\xff\xff\xff\xff\xff\xff\xff\xfb", 8) == 0);
  CHECK((o = map_get(root, "u64")) && o->via.ext.type == CRAY__EXT_UINT64 &&
        memcmp(o->via.ext.ptr, "\xff\xff\xff\xff\xff\xff\xff\xff", 8) == 0);
  int16_t want16[3] = {1, -2, 3};
  CHECK((o = map_get(root, "arr")) && o->via.ext.type == CRAY__EXT_FFI_ARRAY);
  if (o) { /* code 3 (int16_t), padding so that the elements are 16-byte aligned */
    unsigned pad = (uint8_t)o->via.ext.ptr[0] >> 4;
    CHECK_EQ(o->via.ext.ptr[0] & 15, 3);
    CHECK_EQ(o->via.ext.size, 7 + pad);
    CHECK_EQ((o->via.ext.ptr + 1 + pad - (const char *)blob->data) % 16, 0);
    CHECK(memcmp(o->via.ext.ptr + 1 + pad, want16, 6) == 0);
  }
  CHECK((o = map_get(root, "mod")) && o->via.ext.type == CRAY__EXT_MODULE &&
        o->via.ext.size == 6 && memcmp(o->via.ext.ptr, "string", 6) == 0);
  CHECK((o = map_get(root, "g")) && o->via.ext.type == CRAY__EXT_GLOBALS && o->via.ext.size == 0);
  CHECK((o = map_get(root, "cf")) && o->via.ext.type == CRAY__EXT_CFUNC &&
        o->via.ext.size == 13 && memcmp(o->via.ext.ptr, "string.format", 13) == 0);

  msgpack_unpacked p;
  msgpack_unpacked_init(&p);
  CHECK((o = map_get(root, "err")) && o->via.ext.type == CRAY__EXT_ERROR);
  if (o) {
    CHECK(unpack_one(&p, o->via.ext.ptr, o->via.ext.size));
    CHECK(p.data.type == MSGPACK_OBJECT_MAP && map_get(&p.data, "kind") &&
          obj_is_str(map_get(&p.data, "kind"), "timeout"));
  }
  CHECK((o = map_get(root, "obj")) && o->via.ext.type == CRAY__EXT_CLASS);
  if (o) {
    CHECK(unpack_one(&p, o->via.ext.ptr, o->via.ext.size));
    CHECK(p.data.type == MSGPACK_OBJECT_ARRAY && p.data.via.array.size == 2);
    CHECK(obj_is_str(&p.data.via.array.ptr[0], "P"));
    CHECK(obj_is_uint(map_get(&p.data.via.array.ptr[1], "x"), 1));
  }
  CHECK((o = map_get(root, "cyc")) && o->type == MSGPACK_OBJECT_MAP);
  if (o) {
    const msgpack_object *me = map_get(o, "me");
    CHECK(me && me->type == MSGPACK_OBJECT_EXT && me->via.ext.type == CRAY__EXT_BACKREF);
    /* position 1: the root map is 0, cyc is 1 */
    CHECK(me && unpack_one(&p, me->via.ext.ptr, me->via.ext.size) && obj_is_uint(&p.data, 1));
  }
  CHECK((o = map_get(root, "fn")) && o->via.ext.type == CRAY__EXT_FUNCTION);
  if (o) {
    CHECK(unpack_one(&p, o->via.ext.ptr, o->via.ext.size));
    CHECK(p.data.type == MSGPACK_OBJECT_ARRAY && p.data.via.array.size == 2);
    const msgpack_object *bc = &p.data.via.array.ptr[0], *ups = &p.data.via.array.ptr[1];
    CHECK(bc->type == MSGPACK_OBJECT_BIN && bc->via.bin.size > 4 &&
          memcmp(bc->via.bin.ptr, "\x1bLJ", 3) == 0);
    CHECK(ups->type == MSGPACK_OBJECT_ARRAY && ups->via.array.size == 1 &&
          obj_is_uint(&ups->via.array.ptr[0], 5));
  }
  CHECK((o = map_get(root, "ref")) && o->via.ext.type == CRAY__EXT_REF && o->via.ext.size == 16);
  if (o) {
    uint8_t raw[16];
    cray__id_store(&blob->refs[0]->id, raw);
    CHECK(memcmp(o->via.ext.ptr, raw, 16) == 0);
  }
  msgpack_unpacked_destroy(&p);
  msgpack_unpacked_destroy(&u);
  cray__blob_release(rt->store, blob);
  lua_settop(L, 0);
}

static void pack_str(msgpack_packer *pk, const char *s) {
  msgpack_pack_str(pk, strlen(s));
  msgpack_pack_str_body(pk, s, strlen(s));
}

/* An ext whose payload is whatever `fill` packs. */
static void pack_ext_of(msgpack_packer *pk, int8_t type, void (*fill)(msgpack_packer *)) {
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer sub;
  msgpack_packer_init(&sub, &sb, msgpack_sbuffer_write);
  fill(&sub);
  msgpack_pack_ext(pk, sb.size, type);
  msgpack_pack_ext_body(pk, sb.data, sb.size);
  msgpack_sbuffer_destroy(&sb);
}

static void fill_error(msgpack_packer *pk) {
  msgpack_pack_map(pk, 2);
  pack_str(pk, "kind");
  pack_str(pk, "cancelled");
  pack_str(pk, "message");
  pack_str(pk, "from C");
}

static void fill_class(msgpack_packer *pk) {
  msgpack_pack_array(pk, 2);
  pack_str(pk, "C.Point");
  msgpack_pack_map(pk, 2);
  pack_str(pk, "x");
  msgpack_pack_int(pk, 3);
  pack_str(pk, "y");
  msgpack_pack_int(pk, 4);
}

static const char *dumped_fn;
static size_t dumped_len;

static void fill_function(msgpack_packer *pk) {
  msgpack_pack_array(pk, 2);
  msgpack_pack_bin(pk, dumped_len);
  msgpack_pack_bin_body(pk, dumped_fn, dumped_len);
  msgpack_pack_array(pk, 1);
  msgpack_pack_int(pk, 41);
}

static void test_we_read_msgpack_c(void) {
  lua_settop(L, 0);
  CHECK(luaL_dostring(L, "local up\n"
                         "return codec.put('target'), string.dump(function() return up + 1 end)")
        == 0);
  cray__entry *ref = cray__objref_test(L, ls, 1);
  dumped_fn = lua_tolstring(L, 2, &dumped_len);

  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, 36);
  msgpack_pack_nil(&pk);                                  /* 1 */
  msgpack_pack_true(&pk);                                 /* 2 */
  msgpack_pack_false(&pk);                                /* 3 */
  msgpack_pack_fix_uint8(&pk, 5);                         /* 4: wider forms than needed */
  msgpack_pack_fix_uint16(&pk, 6);                        /* 5 */
  msgpack_pack_fix_uint32(&pk, 7);                        /* 6 */
  msgpack_pack_fix_uint64(&pk, 8);                        /* 7 */
  msgpack_pack_fix_int8(&pk, -3);                         /* 8 */
  msgpack_pack_fix_int16(&pk, -300);                      /* 9 */
  msgpack_pack_fix_int32(&pk, -70000);                    /* 10 */
  msgpack_pack_fix_int64(&pk, -5);                        /* 11 */
  msgpack_pack_uint64(&pk, (1ULL << 53) + 1);             /* 12: int64 cdata */
  msgpack_pack_int64(&pk, -(1LL << 53) - 1);              /* 13: int64 cdata */
  msgpack_pack_uint64(&pk, UINT64_MAX);                   /* 14: uint64 cdata */
  msgpack_pack_uint64(&pk, 1ULL << 53);                   /* 15: still a number */
  msgpack_pack_float(&pk, 1.5f);                          /* 16 */
  msgpack_pack_double(&pk, -0.125);                       /* 17 */
  pack_str(&pk, "text");                                  /* 18 */
  msgpack_pack_bin(&pk, 3);                               /* 19 */
  msgpack_pack_bin_body(&pk, "\x00\x01\x02", 3);
  msgpack_pack_array(&pk, 2);                             /* 20 */
  msgpack_pack_int(&pk, 1);
  msgpack_pack_array(&pk, 0);
  msgpack_pack_map(&pk, 3);                               /* 21 */
  pack_str(&pk, "k");
  msgpack_pack_int(&pk, 1);
  msgpack_pack_int(&pk, 7);
  pack_str(&pk, "seven");
  msgpack_pack_true(&pk);
  msgpack_pack_nil(&pk);
  msgpack_pack_ext(&pk, 8, CRAY__EXT_INT64);              /* 22 */
  msgpack_pack_ext_body(&pk, "\x80\x00\x00\x00\x00\x00\x00\x00", 8);
  msgpack_pack_ext(&pk, 8, CRAY__EXT_UINT64);             /* 23 */
  msgpack_pack_ext_body(&pk, "\x00\x00\x00\x00\x00\x00\x01\x00", 8);
  double arr[3] = {1.5, -2, 1e10};                        /* 24 */
  msgpack_pack_ext(&pk, 1 + sizeof arr, CRAY__EXT_FFI_ARRAY);
  msgpack_pack_ext_body(&pk, "\x0a", 1);
  msgpack_pack_ext_body(&pk, arr, sizeof arr);
  msgpack_pack_ext(&pk, 4, CRAY__EXT_MODULE);             /* 25 */
  msgpack_pack_ext_body(&pk, "math", 4);
  msgpack_pack_ext(&pk, 0, CRAY__EXT_GLOBALS);            /* 26 */
  msgpack_pack_ext(&pk, 9, CRAY__EXT_CFUNC);              /* 27 */
  msgpack_pack_ext_body(&pk, "math.sqrt", 9);
  pack_ext_of(&pk, CRAY__EXT_ERROR, fill_error);          /* 28 */
  pack_ext_of(&pk, CRAY__EXT_CLASS, fill_class);          /* 29 */
  msgpack_pack_map(&pk, 1);                               /* 30: {self = <backref 1>} */
  pack_str(&pk, "self");
  msgpack_pack_ext(&pk, 1, CRAY__EXT_BACKREF);
  msgpack_pack_ext_body(&pk, "\x01", 1);
  uint8_t raw[16];                                        /* 31 */
  cray__id_store(&ref->id, raw);
  msgpack_pack_ext(&pk, 16, CRAY__EXT_REF);
  msgpack_pack_ext_body(&pk, raw, 16);
  pack_ext_of(&pk, CRAY__EXT_FUNCTION, fill_function);    /* 32 */
  msgpack_pack_ext(&pk, 1, CRAY__EXT_BACKREF);            /* 33: the outer array */
  msgpack_pack_ext_body(&pk, "\x00", 1);
  msgpack_pack_str(&pk, 0);                               /* 34 */
  msgpack_pack_int64(&pk, INT64_MIN);                     /* 35 */
  msgpack_pack_double(&pk, NAN);                          /* 36 */

  lua_newtable(L);
  lua_pushliteral(L, "C.Point");
  lua_setfield(L, -2, "__name");
  lua_getglobal(L, "classes");
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "C.Point");
  lua_pushvalue(L, -2);
  lua_pushliteral(L, "C.Point");
  lua_rawset(L, -3);
  lua_pop(L, 2);

  cray__blob *b = cray__blob_new((const uint8_t *)sb.data, sb.size, 1, &ref, 1,
                                 CRAY__BLOB_TRUSTED);
  lua_pushcfunction(L, decode_inner);
  lua_pushlightuserdata(L, b);
  lua_pushinteger(L, -1);
  int rc = lua_pcall(L, 2, 1, 0);
  if (rc && lua_istable(L, -1)) lua_getfield(L, -1, "message");
  if (rc) fprintf(stderr, "decode: %s\n", lua_tostring(L, -1));
  CHECK(rc == 0);
  cray__blob_release(rt->store, b);
  msgpack_sbuffer_destroy(&sb);
  if (rc) return;
  lua_setglobal(L, "got");
  lua_pushvalue(L, 1);
  lua_setglobal(L, "ref");
  LUA_CHECK("local g = got\n"
         "assert(g[1] == nil and g[2] == true and g[3] == false)\n"
         "for i, v in ipairs{5, 6, 7, 8, -3, -300, -70000, -5} do\n"
         "  assert(g[3 + i] == v and type(g[3 + i]) == 'number', i)\n"
         "end\n"
         "assert(ffi.istype('int64_t', g[12]) and g[12] == 9007199254740993LL)\n"
         "assert(ffi.istype('int64_t', g[13]) and g[13] == -9007199254740993LL)\n"
         "assert(ffi.istype('uint64_t', g[14]) and g[14] == 0xffffffffffffffffULL)\n"
         "assert(type(g[15]) == 'number' and g[15] == 2^53)\n"
         "assert(g[16] == 1.5 and g[17] == -0.125 and g[18] == 'text' and g[19] == '\\0\\1\\2')\n"
         "assert(g[20][1] == 1 and #g[20][2] == 0)\n"
         "assert(g[21].k == 1 and g[21][7] == 'seven' and g[21][true] == nil)\n"
         "assert(g[22] == -0x8000000000000000LL)\n"
         "assert(ffi.istype('uint64_t', g[23]) and g[23] == 256)\n"
         "assert(ffi.istype('cray_view_double', g[24]) and #g[24] == 3)\n"
         "assert(g[24][0] == 1.5 and g[24][1] == -2 and g[24][2] == 1e10)\n"
         "assert(g[25] == math and g[26] == _G and g[27] == math.sqrt)\n"
         "assert(getmetatable(g[28]) == Error and g[28].kind == 'cancelled')\n"
         "assert(getmetatable(g[29]) == classes['C.Point'] and g[29].x == 3 and g[29].y == 4)\n"
         "assert(g[30].self == g[30])\n"
         "assert(g[31] == ref)\n"
         "assert(type(g[32]) == 'function' and g[32]() == 42)\n"
         "assert(g[33] == g and g[34] == '')\n"
         "assert(ffi.istype('int64_t', g[35]) and g[35] == -0x8000000000000000LL)\n"
         "assert(g[36] ~= g[36])\n"
         "got, ref = nil, nil\n");
  lua_settop(L, 0);
}

/* ---- malformed input ---- */

/* Decodes data[0..len) (count 1, with refs) in a protected call: 1 when it decoded. The
 * stack is left as it was. */
static int try_decode(const uint8_t *data, size_t len, cray__entry **refs, uint32_t nrefs,
                      uint32_t flags) {
  int top = lua_gettop(L);
  cray__blob *b = cray__blob_new(data, len, 1, refs, nrefs, flags);
  lua_pushcfunction(L, decode_inner);
  lua_pushlightuserdata(L, b);
  lua_pushinteger(L, -1);
  int rc = lua_pcall(L, 2, LUA_MULTRET, 0);
  cray__blob_release(rt->store, b);
  lua_settop(L, top);
  return rc == 0;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state >> 16);
}

static void test_fuzz(void) {
  lua_settop(L, 0);
  if (luaL_dostring(L,
                    "local Point = {}\n"
                    "classes['F'], classes[Point] = Point, 'F'\n"
                    "local cyc = {1, 2}; cyc[3] = cyc\n"
                    "local up = {n = 1}\n"
                    "return {1, -1, 200, -200, 70000, -70000, 2^40, -2^40, 0.5, 'str',\n"
                    "        ('long'):rep(20), true, false, {}, {a = {b = {c = 'd'}}},\n"
                    "        {[1] = 'x', [5] = 'y', [true] = 2.5}, 5LL, 7ULL,\n"
                    "        ffi.new('float[2]', {1, 2}), string, _G, string.rep,\n"
                    "        setmetatable({kind = 'k', cause = setmetatable({}, Error)}, Error),\n"
                    "        setmetatable({x = 1, y = {2}}, Point), cyc,\n"
                    "        function() return up.n end, codec.put(3), codec.put({4})}\n") != 0) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    CHECK(0);
    return;
  }
  cray__codec_encode(L, ls, 1, 1, "value");
  CHECK_EQ(ls->nsplices, 0); /* nothing big: the scratch bytes are the whole blob */
  size_t len = ls->scratch.len;
  uint32_t nrefs = ls->nrefs;
  uint8_t *data = cray__malloc(len);
  cray__entry *refs[2];
  memcpy(data, ls->scratch.data, len);
  memcpy(refs, ls->refs, nrefs * sizeof *refs);
  CHECK_EQ(nrefs, 2);
  lua_settop(L, 1); /* the value keeps the refs alive */

  CHECK(try_decode(data, len, refs, nrefs, CRAY__BLOB_TRUSTED));
  CHECK(!try_decode(data, len, refs, nrefs, 0)); /* holds a function */

  /* Every truncation fails, trusted or not. */
  int decoded = 0;
  for (size_t n = 0; n < len; n++) {
    decoded += try_decode(data, n, refs, nrefs, 0);
    decoded += try_decode(data, n, refs, nrefs, CRAY__BLOB_TRUSTED);
  }
  CHECK_EQ(decoded, 0);

  /* Every single-byte corruption raises or decodes; none crashes. Untrusted: corrupt
   * bytecode is exactly what trust exists to keep out of LuaJIT's loader. */
  static const uint8_t subst[] = {0x00, 0x7f, 0x80, 0x90, 0xc0, 0xc1, 0xc7, 0xc9, 0xcc,
                                  0xd4, 0xd8, 0xdc, 0xdd, 0xde, 0xdf, 0xff};
  uint8_t *mut = cray__malloc(len);
  int survived = 0, runs = 0;
  for (size_t i = 0; i < len; i++) {
    for (size_t k = 0; k < sizeof subst + 3; k++) {
      memcpy(mut, data, len);
      mut[i] = k < sizeof subst ? subst[k] : (uint8_t)(data[i] ^ (1u << (k - sizeof subst)));
      survived += try_decode(mut, len, refs, nrefs, 0);
      runs++;
    }
  }
  CHECK(runs > 0 && survived < runs);
  CHECK_EQ(lua_gettop(L), 1);

  /* Random bytes, biased towards MessagePack's type tags and cray's extension numbers,
   * and the valid blob with a few random bytes changed. */
  static const uint8_t tags[] = {0x91, 0x92, 0x81, 0xa1, 0xc4, 0xc7, 0xc8, 0xc9, 0xd4, 0xd5,
                                 0xd6, 0xd7, 0xd8, 0xdc, 0xdd, 0xde, 0xdf, 0xcf, 0xd3, 0xcb,
                                 0x01, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d};
  uint8_t buf[96];
  const char *env = getenv("CRAY_FUZZ_ROUNDS"); /* more for a longer soak */
  long rounds = env ? atol(env) : 30000;
  for (long round = 0; round < rounds; round++) {
    if (round % 2) {
      memcpy(mut, data, len);
      for (int k = 1 + rng() % 4; k > 0; k--)
        mut[rng() % len] = rng() % 2 ? tags[rng() % sizeof tags] : (uint8_t)rng();
      try_decode(mut, len, refs, nrefs, 0);
      continue;
    }
    size_t n = 1 + rng() % sizeof buf;
    for (size_t i = 0; i < n; i++)
      buf[i] = rng() % 2 ? tags[rng() % sizeof tags] : (uint8_t)rng();
    try_decode(buf, n, refs, nrefs, 0);
  }
  CHECK_EQ(lua_gettop(L), 1);
  cray__free(mut);
  cray__free(data);
  lua_settop(L, 0);
}

/* ---- throughput, when asked (CRAY_CODEC_BENCH=1) ---- */

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void bench(void) {
  static const char *const values[] = {"return 42", "return 'ok'", "return {1, 2, 3}",
                                       "return {x = 1, y = 'two'}",
                                       "local t = {1} return function() return t end",
                                       "return function() return string end", NULL};
  for (int v = 0; values[v]; v++) {
    lua_settop(L, 0);
    if (luaL_dostring(L, values[v])) return;
    int n = 2000000;
    double t0 = now();
    for (int i = 0; i < n; i++) cray__codec_encode(L, ls, 1, 1, "value");
    double t1 = now();
    cray__blob *b = blob_of_encoded(1, CRAY__BLOB_TRUSTED);
    for (int i = 0; i < n; i++) {
      cray__codec_decode(L, ls, b, -1);
      lua_settop(L, 1);
    }
    double t2 = now();
    cray__blob_release(rt->store, b);
    printf("bench %-28s encode %6.1f M/s  decode %6.1f M/s\n", values[v], n / (t1 - t0) / 1e6,
           n / (t2 - t1) / 1e6);
  }
  lua_settop(L, 0);
}

int main(void) {
  setup();
  RUN(test_scalars);
  RUN(test_strings);
  RUN(test_tables);
  RUN(test_functions);
  RUN(test_cycles);
  RUN(test_classes_and_errors);
  RUN(test_cdata);
  RUN(test_large_in_extensions);
  RUN(test_objrefs);
  RUN(test_refusals);
  RUN(test_malformed_messages);
  RUN(test_msgpack_c_reads_ours);
  RUN(test_we_read_msgpack_c);
  RUN(test_fuzz);
  if (getenv("CRAY_CODEC_BENCH")) bench();
  teardown();
  return check_done();
}
