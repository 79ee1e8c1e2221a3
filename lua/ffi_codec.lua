-- cray.ffi_codec: the Lua half of the codec for FFI cdata (bindings/codec.c).
--
-- The C API cannot see inside cdata: what type it has, how big it is, or how to make a
-- new one. The codec calls these helpers for that and copies the bytes itself through
-- lua_topointer. Classifying a ctype means parsing its printed name, so the answer is
-- cached per ctype id (tonumber(ffi.typeof(x))); a put of many arrays of one type pays
-- for one table lookup each.
--
-- Arrays come back from the store as views: a struct cray_view_<type> {data, len}
-- pointing into the stored blob, read-only, indexed from 0 like the array it was, with
-- #view for its length and view:copy() for a mutable array. Its finalizer (`release`,
-- set by the C side) drops the blob reference the view holds. The layout is
-- cray__view's in bindings/codec.h.
--
-- Element codes travel in blobs (docs/format.md, "FFI array"); they must not change:
--   1 int8  2 uint8  3 int16  4 uint16  5 int32  6 uint32  7 int64  8 uint64
--   9 float  10 double
-- The extension type numbers returned by classify are those of runtime/wire.h.

local ffi = require "ffi"

local EXT_FFI_ARRAY, EXT_INT64, EXT_UINT64 = 6, 10, 11

local M = {}

-- Canonical element type of each code, and its array type for new_array.
local element_types = {"int8_t", "uint8_t", "int16_t", "uint16_t", "int32_t", "uint32_t",
                       "int64_t", "uint64_t", "float", "double"}
local array_of = {}
for code, name in ipairs(element_types) do array_of[code] = ffi.typeof(name .. "[?]") end

-- The code of an element type from what it is, not how it is spelled: LuaJIT prints
-- int8_t as "char" and long as "int64_t", and char's signedness depends on the target.
local function code_of(spelling)
  local size = ffi.sizeof(spelling)
  if spelling == "float" or spelling == "double" then return size == 4 and 9 or 10 end
  local signed = tonumber(ffi.cast(spelling, -1)) < 0
  local base = ({[1] = 1, [2] = 3, [4] = 5, [8] = 7})[size]
  return base and (signed and base or base + 1)
end

-- Printed element name (as in "ctype<unsigned char [?]>") -> element code.
local element_code = {}
for _, spelling in ipairs{"char", "signed char", "unsigned char", "short", "unsigned short",
                          "int", "unsigned int", "long", "unsigned long", "long long",
                          "unsigned long long", "int8_t", "uint8_t", "int16_t", "uint16_t",
                          "int32_t", "uint32_t", "int64_t", "uint64_t", "float", "double"} do
  local printed = tostring(ffi.typeof(spelling .. "[1]")):match("^ctype<(.*) %[1%]>$")
  if printed then element_code[printed] = code_of(spelling) end
end

local int64_t, uint64_t = ffi.typeof("int64_t"), ffi.typeof("uint64_t")
local scalar_ext = {int64_t = EXT_INT64, uint64_t = EXT_UINT64}

-- ctype id -> element code (array), VIEW + element code (view), extension type negated
-- (64-bit scalar), or the refusal text.
local cache = {}
local VIEW = 16

-- ---- views ----

local element_size = {}
local view_of = {}

local function view_metatable(code, name)
  local methods = {}
  -- A fresh, mutable array holding a copy of the elements.
  function methods.copy(v)
    local a = array_of[code](v.len)
    ffi.copy(a, v.data, v.len * element_size[code])
    return a
  end
  return {
    __index = function(v, i)
      if type(i) == "number" then
        if i >= 0 and i < v.len then return v.data[i] end
        error(("index %s out of range: a view of %d elements has 0 to %d"):format(
          tostring(i), v.len, v.len - 1), 2)
      end
      return methods[i]
    end,
    __newindex = function()
      error("a cray view is read-only (view:copy() gives a mutable array)", 2)
    end,
    __len = function(v) return v.len end,
    __tostring = function(v) return ("cray.view<%s>[%d]"):format(name, v.len) end,
  }
end

for code, name in ipairs(element_types) do
  element_size[code] = ffi.sizeof(name)
  local tag = "cray_view_" .. name
  -- The module may load twice in one state (a test runner resetting package.loaded); a
  -- ctype can be declared, and given a metatable, only once.
  local known, ct = pcall(ffi.typeof, tag)
  if not known then
    ffi.cdef(("typedef struct %s { const %s *const data; const uint32_t len;"
              .. " const uint32_t pad_; void *const owner_; void *const store_; } %s;")
             :format(tag, name, tag))
    ct = ffi.metatype(tag, view_metatable(code, name))
  end
  view_of[code] = ct
  cache[tonumber(ct)] = VIEW + code
end

local function classify_type(ct)
  local name = tostring(ct):match("^ctype<(.*)>$") or tostring(ct)
  local scalar = scalar_ext[name:gsub("^const ", "")]
  if scalar then return -scalar end
  local element = name:match("^(.-) ?%[[%d?]*%]$")
  local code = element and element_code[element:gsub("^const ", "")]
  return code or ("cdata<" .. name .. ">")
end

-- classify(x) -> ext, element_code, nbytes   (an array: ext 6, codes above)
--             -> ext, code, nbytes, true     (a view: its elements are at x.data)
--             -> ext, 0, 8                   (int64_t: ext 10, uint64_t: ext 11)
--             -> nil, "cdata<struct foo *>"  (anything else: the codec refuses it)
function M.classify(x)
  local ct = ffi.typeof(x)
  local id = tonumber(ct)
  local c = cache[id]
  if c == nil then
    c = classify_type(ct)
    cache[id] = c
  end
  if type(c) == "string" then return nil, c end
  if c < 0 then return -c, 0, 8 end
  if c > VIEW then return EXT_FFI_ARRAY, c - VIEW, x.len * element_size[c - VIEW], true end
  return EXT_FFI_ARRAY, c, ffi.sizeof(x)
end

-- A view of len elements of code `code` at data (light userdata), holding the blob
-- reference `owner` of store `store` (light userdata both) until it is collected.
function M.new_view(code, data, len, owner, store)
  return ffi.gc(view_of[code](data, len, 0, owner, store), M.release)
end

-- A `const char *` to data (light userdata) whose collection calls fin.
local const_char_p = ffi.typeof("const char *")
function M.new_buffer(data, fin)
  return ffi.gc(ffi.cast(const_char_p, data), fin)
end

-- Fresh 64-bit boxes for the codec to copy a value into.
function M.new_int64()
  return ffi.new(int64_t)
end

function M.new_uint64()
  return ffi.new(uint64_t)
end

return M
