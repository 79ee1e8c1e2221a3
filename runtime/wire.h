/*
 * wire.h: MessagePack primitives, a growable write buffer and a pull reader.
 *
 * The Lua codec (bindings/codec.c) writes and reads blobs with these in one pass, with no
 * intermediate tree. The reader never reads past `end`: every item is checked against the
 * bytes left, so malformed or truncated input yields CRAY_EBADBLOB, never a fault.
 * cray's extension types are listed here; docs/format.md describes their payloads.
 */
#ifndef CRAY_WIRE_H
#define CRAY_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum {
  CRAY__EXT_REF = 1,       /* ObjectRef: 16-byte id */
  CRAY__EXT_ACTOR = 2,     /* ActorHandle (reserved) */
  CRAY__EXT_REMOTE = 3,    /* remote-function handle (reserved) */
  CRAY__EXT_FUNCTION = 4,  /* Lua function: [bytecode, [upvalue...]] */
  CRAY__EXT_ERROR = 5,     /* error object: map of its fields */
  CRAY__EXT_FFI_ARRAY = 6, /* FFI array: element code byte, raw bytes */
  CRAY__EXT_MODULE = 7,    /* module table by its require name */
  CRAY__EXT_GLOBALS = 8,   /* the global table of the decoding state */
  CRAY__EXT_CFUNC = 9,     /* standard-library C function by name */
  CRAY__EXT_INT64 = 10,    /* int64_t cdata, 8 bytes big-endian */
  CRAY__EXT_UINT64 = 11,   /* uint64_t cdata, 8 bytes big-endian */
  CRAY__EXT_CLASS = 12,    /* table with a registered metatable: [name, table] */
  CRAY__EXT_BACKREF = 13,  /* the n-th enclosing table or function (a cycle) */
};

/* ---- writing ---- */

typedef struct cray__buf {
  uint8_t *data;
  size_t len, cap;
  int failed; /* set when growing failed; later writes are dropped */
} cray__buf;

void cray__buf_init(cray__buf *b);
void cray__buf_free(cray__buf *b);
/* Makes room for n more bytes; 0 or CRAY_ENOMEM (and b->failed). */
int cray__buf_grow(cray__buf *b, size_t n);

static inline uint8_t *cray__buf_reserve(cray__buf *b, size_t n) {
  if (b->cap - b->len < n && cray__buf_grow(b, n) != 0) return NULL;
  uint8_t *p = b->data + b->len;
  b->len += n;
  return p;
}

static inline void cray__buf_write(cray__buf *b, const void *src, size_t n) {
  uint8_t *p = cray__buf_reserve(b, n);
  if (p) memcpy(p, src, n);
}

static inline void cray__be16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static inline void cray__be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}
static inline void cray__be64(uint8_t *p, uint64_t v) {
  cray__be32(p, (uint32_t)(v >> 32));
  cray__be32(p + 4, (uint32_t)v);
}

void cray__mp_nil(cray__buf *b);
void cray__mp_bool(cray__buf *b, int v);
void cray__mp_int(cray__buf *b, int64_t v);
void cray__mp_uint(cray__buf *b, uint64_t v);
void cray__mp_double(cray__buf *b, double v);
void cray__mp_str(cray__buf *b, const char *s, size_t n);
/* The header of a str of n bytes; the bytes follow. */
void cray__mp_str_head(cray__buf *b, size_t n);
void cray__mp_bin(cray__buf *b, const void *s, size_t n);
void cray__mp_array(cray__buf *b, uint32_t n);
void cray__mp_map(cray__buf *b, uint32_t n);
/* An ext header for a payload of n bytes; the payload follows. */
void cray__mp_ext(cray__buf *b, int8_t type, uint32_t n);
/* An ext32 header whose length is patched later with cray__mp_ext_end: for payloads
 * written in place (nested values). Returns the header's offset. */
size_t cray__mp_ext_begin(cray__buf *b, int8_t type);
void cray__mp_ext_end(cray__buf *b, size_t at);

/* ---- reading ---- */

typedef enum cray__mp_type {
  CRAY__MP_NIL,
  CRAY__MP_BOOL,
  CRAY__MP_INT,    /* v.i */
  CRAY__MP_UINT,   /* v.u, values above INT64_MAX only */
  CRAY__MP_FLOAT,  /* v.d (float32 widened) */
  CRAY__MP_STR,    /* p, n */
  CRAY__MP_BIN,    /* p, n */
  CRAY__MP_ARRAY,  /* n elements follow */
  CRAY__MP_MAP,    /* n key/value pairs follow */
  CRAY__MP_EXT,    /* ext type, p, n */
} cray__mp_type;

typedef struct cray__mp_item {
  cray__mp_type type;
  int8_t ext;
  uint32_t n;
  const uint8_t *p;
  union {
    int b;
    int64_t i;
    uint64_t u;
    double d;
  } v;
} cray__mp_item;

typedef struct cray__mp_reader {
  const uint8_t *p, *end;
} cray__mp_reader;

/* Reads the next item header (and scalar payload). 0 or CRAY_EBADBLOB. */
int cray__mp_next(cray__mp_reader *r, cray__mp_item *it);
/* Skips one whole value, nested ones included, up to `depth` levels. 0 or CRAY_EBADBLOB. */
int cray__mp_skip(cray__mp_reader *r, int depth);

#endif
