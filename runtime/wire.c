/*
 * wire.c: see wire.h. Encodings follow the MessagePack specification: the smallest
 * form that holds each value.
 */
#include "wire.h"

#include "alloc.h"
#include "cray.h"

void cray__buf_init(cray__buf *b) {
  b->data = NULL;
  b->len = b->cap = 0;
  b->failed = 0;
}

void cray__buf_free(cray__buf *b) {
  cray__free(b->data);
  cray__buf_init(b);
}

int cray__buf_grow(cray__buf *b, size_t n) {
  if (b->failed) return CRAY_ENOMEM;
  size_t cap = b->cap ? b->cap : 256;
  while (cap - b->len < n) {
    if (cap > SIZE_MAX / 2) goto fail;
    cap *= 2;
  }
  uint8_t *d = cray__realloc(b->data, cap);
  if (!d) goto fail;
  b->data = d;
  b->cap = cap;
  return 0;
fail:
  b->failed = 1;
  return CRAY_ENOMEM;
}

static inline void put1(cray__buf *b, uint8_t tag) {
  uint8_t *p = cray__buf_reserve(b, 1);
  if (p) p[0] = tag;
}

static inline void put_tag16(cray__buf *b, uint8_t tag, uint16_t v) {
  uint8_t *p = cray__buf_reserve(b, 3);
  if (p) {
    p[0] = tag;
    cray__be16(p + 1, v);
  }
}

static inline void put_tag32(cray__buf *b, uint8_t tag, uint32_t v) {
  uint8_t *p = cray__buf_reserve(b, 5);
  if (p) {
    p[0] = tag;
    cray__be32(p + 1, v);
  }
}

static inline void put_tag64(cray__buf *b, uint8_t tag, uint64_t v) {
  uint8_t *p = cray__buf_reserve(b, 9);
  if (p) {
    p[0] = tag;
    cray__be64(p + 1, v);
  }
}

void cray__mp_nil(cray__buf *b) { put1(b, 0xc0); }

void cray__mp_bool(cray__buf *b, int v) { put1(b, v ? 0xc3 : 0xc2); }

void cray__mp_uint(cray__buf *b, uint64_t v) {
  if (v < 128) {
    put1(b, (uint8_t)v);
  } else if (v <= UINT8_MAX) {
    uint8_t *p = cray__buf_reserve(b, 2);
    if (p) {
      p[0] = 0xcc;
      p[1] = (uint8_t)v;
    }
  } else if (v <= UINT16_MAX) {
    put_tag16(b, 0xcd, (uint16_t)v);
  } else if (v <= UINT32_MAX) {
    put_tag32(b, 0xce, (uint32_t)v);
  } else {
    put_tag64(b, 0xcf, v);
  }
}

void cray__mp_int(cray__buf *b, int64_t v) {
  if (v >= 0) {
    cray__mp_uint(b, (uint64_t)v);
  } else if (v >= -32) {
    put1(b, (uint8_t)(int8_t)v);
  } else if (v >= INT8_MIN) {
    uint8_t *p = cray__buf_reserve(b, 2);
    if (p) {
      p[0] = 0xd0;
      p[1] = (uint8_t)(int8_t)v;
    }
  } else if (v >= INT16_MIN) {
    put_tag16(b, 0xd1, (uint16_t)(int16_t)v);
  } else if (v >= INT32_MIN) {
    put_tag32(b, 0xd2, (uint32_t)(int32_t)v);
  } else {
    put_tag64(b, 0xd3, (uint64_t)v);
  }
}

void cray__mp_double(cray__buf *b, double v) {
  uint64_t bits;
  memcpy(&bits, &v, sizeof bits);
  put_tag64(b, 0xcb, bits);
}

static void put_len(cray__buf *b, uint32_t n, uint8_t fix, uint32_t fixmax, uint8_t t8,
                    uint8_t t16, uint8_t t32) {
  if (fix && n <= fixmax) {
    put1(b, (uint8_t)(fix | n));
  } else if (t8 && n <= UINT8_MAX) {
    uint8_t *p = cray__buf_reserve(b, 2);
    if (p) {
      p[0] = t8;
      p[1] = (uint8_t)n;
    }
  } else if (n <= UINT16_MAX) {
    put_tag16(b, t16, (uint16_t)n);
  } else {
    put_tag32(b, t32, n);
  }
}

void cray__mp_str_head(cray__buf *b, size_t n) {
  put_len(b, (uint32_t)n, 0xa0, 31, 0xd9, 0xda, 0xdb);
}

void cray__mp_str(cray__buf *b, const char *s, size_t n) {
  cray__mp_str_head(b, n);
  cray__buf_write(b, s, n);
}

void cray__mp_bin(cray__buf *b, const void *s, size_t n) {
  put_len(b, (uint32_t)n, 0, 0, 0xc4, 0xc5, 0xc6);
  cray__buf_write(b, s, n);
}

void cray__mp_array(cray__buf *b, uint32_t n) { put_len(b, n, 0x90, 15, 0, 0xdc, 0xdd); }

void cray__mp_map(cray__buf *b, uint32_t n) { put_len(b, n, 0x80, 15, 0, 0xde, 0xdf); }

void cray__mp_ext(cray__buf *b, int8_t type, uint32_t n) {
  static const uint8_t fixext[17] = {[1] = 0xd4, [2] = 0xd5, [4] = 0xd6, [8] = 0xd7, [16] = 0xd8};
  uint8_t *p;
  if (n <= 16 && fixext[n]) {
    p = cray__buf_reserve(b, 2);
    if (p) p[0] = fixext[n], p[1] = (uint8_t)type;
  } else if (n <= UINT8_MAX) {
    p = cray__buf_reserve(b, 3);
    if (p) p[0] = 0xc7, p[1] = (uint8_t)n, p[2] = (uint8_t)type;
  } else if (n <= UINT16_MAX) {
    p = cray__buf_reserve(b, 4);
    if (p) p[0] = 0xc8, cray__be16(p + 1, (uint16_t)n), p[3] = (uint8_t)type;
  } else {
    p = cray__buf_reserve(b, 6);
    if (p) p[0] = 0xc9, cray__be32(p + 1, n), p[5] = (uint8_t)type;
  }
}

size_t cray__mp_ext_begin(cray__buf *b, int8_t type) {
  size_t at = b->len;
  uint8_t *p = cray__buf_reserve(b, 6);
  if (p) p[0] = 0xc9, cray__be32(p + 1, 0), p[5] = (uint8_t)type;
  return at;
}

void cray__mp_ext_end(cray__buf *b, size_t at) {
  if (b->failed) return;
  cray__be32(b->data + at + 1, (uint32_t)(b->len - at - 6));
}

/* ---- reading ---- */

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) << 32 | rd32(p + 4); }

#define NEED(k)                                          \
  do {                                                   \
    if ((size_t)(r->end - p) < (size_t)(k)) return CRAY_EBADBLOB; \
  } while (0)

/* Finishes a str/bin/ext item whose payload of n bytes starts at p. */
static int take_payload(cray__mp_reader *r, cray__mp_item *it, const uint8_t *p, uint32_t n) {
  if ((size_t)(r->end - p) < n) return CRAY_EBADBLOB;
  it->n = n;
  it->p = p;
  r->p = p + n;
  return 0;
}

int cray__mp_next(cray__mp_reader *r, cray__mp_item *it) {
  const uint8_t *p = r->p;
  NEED(1);
  uint8_t t = *p++;
  if (t <= 0x7f || t >= 0xe0) {
    it->type = CRAY__MP_INT;
    it->v.i = (int8_t)t;
    if (t <= 0x7f) it->v.i = t;
    r->p = p;
    return 0;
  }
  if (t >= 0x80 && t <= 0x8f) {
    it->type = CRAY__MP_MAP, it->n = t & 0x0f, r->p = p;
    return 0;
  }
  if (t >= 0x90 && t <= 0x9f) {
    it->type = CRAY__MP_ARRAY, it->n = t & 0x0f, r->p = p;
    return 0;
  }
  if (t >= 0xa0 && t <= 0xbf) {
    it->type = CRAY__MP_STR;
    return take_payload(r, it, p, t & 0x1f);
  }
  switch (t) {
    case 0xc0:
      it->type = CRAY__MP_NIL, r->p = p;
      return 0;
    case 0xc2:
    case 0xc3:
      it->type = CRAY__MP_BOOL, it->v.b = t == 0xc3, r->p = p;
      return 0;
    case 0xc4: NEED(1); it->type = CRAY__MP_BIN; return take_payload(r, it, p + 1, p[0]);
    case 0xc5: NEED(2); it->type = CRAY__MP_BIN; return take_payload(r, it, p + 2, rd16(p));
    case 0xc6: NEED(4); it->type = CRAY__MP_BIN; return take_payload(r, it, p + 4, rd32(p));
    case 0xc7: NEED(2); it->type = CRAY__MP_EXT; it->ext = (int8_t)p[1];
      return take_payload(r, it, p + 2, p[0]);
    case 0xc8: NEED(3); it->type = CRAY__MP_EXT; it->ext = (int8_t)p[2];
      return take_payload(r, it, p + 3, rd16(p));
    case 0xc9: NEED(5); it->type = CRAY__MP_EXT; it->ext = (int8_t)p[4];
      return take_payload(r, it, p + 5, rd32(p));
    case 0xca: {
      NEED(4);
      uint32_t bits = rd32(p);
      float f;
      memcpy(&f, &bits, sizeof f);
      it->type = CRAY__MP_FLOAT, it->v.d = f, r->p = p + 4;
      return 0;
    }
    case 0xcb: {
      NEED(8);
      uint64_t bits = rd64(p);
      memcpy(&it->v.d, &bits, sizeof bits);
      it->type = CRAY__MP_FLOAT, r->p = p + 8;
      return 0;
    }
    case 0xcc: NEED(1); it->type = CRAY__MP_INT, it->v.i = p[0], r->p = p + 1; return 0;
    case 0xcd: NEED(2); it->type = CRAY__MP_INT, it->v.i = rd16(p), r->p = p + 2; return 0;
    case 0xce: NEED(4); it->type = CRAY__MP_INT, it->v.i = rd32(p), r->p = p + 4; return 0;
    case 0xcf: {
      NEED(8);
      uint64_t u = rd64(p);
      if (u > INT64_MAX) it->type = CRAY__MP_UINT, it->v.u = u;
      else it->type = CRAY__MP_INT, it->v.i = (int64_t)u;
      r->p = p + 8;
      return 0;
    }
    case 0xd0: NEED(1); it->type = CRAY__MP_INT, it->v.i = (int8_t)p[0], r->p = p + 1; return 0;
    case 0xd1: NEED(2); it->type = CRAY__MP_INT, it->v.i = (int16_t)rd16(p), r->p = p + 2; return 0;
    case 0xd2: NEED(4); it->type = CRAY__MP_INT, it->v.i = (int32_t)rd32(p), r->p = p + 4; return 0;
    case 0xd3: NEED(8); it->type = CRAY__MP_INT, it->v.i = (int64_t)rd64(p), r->p = p + 8; return 0;
    case 0xd4: NEED(1); it->type = CRAY__MP_EXT, it->ext = (int8_t)p[0]; return take_payload(r, it, p + 1, 1);
    case 0xd5: NEED(1); it->type = CRAY__MP_EXT, it->ext = (int8_t)p[0]; return take_payload(r, it, p + 1, 2);
    case 0xd6: NEED(1); it->type = CRAY__MP_EXT, it->ext = (int8_t)p[0]; return take_payload(r, it, p + 1, 4);
    case 0xd7: NEED(1); it->type = CRAY__MP_EXT, it->ext = (int8_t)p[0]; return take_payload(r, it, p + 1, 8);
    case 0xd8: NEED(1); it->type = CRAY__MP_EXT, it->ext = (int8_t)p[0]; return take_payload(r, it, p + 1, 16);
    case 0xd9: NEED(1); it->type = CRAY__MP_STR; return take_payload(r, it, p + 1, p[0]);
    case 0xda: NEED(2); it->type = CRAY__MP_STR; return take_payload(r, it, p + 2, rd16(p));
    case 0xdb: NEED(4); it->type = CRAY__MP_STR; return take_payload(r, it, p + 4, rd32(p));
    case 0xdc: NEED(2); it->type = CRAY__MP_ARRAY, it->n = rd16(p), r->p = p + 2; return 0;
    case 0xdd: NEED(4); it->type = CRAY__MP_ARRAY, it->n = rd32(p), r->p = p + 4; return 0;
    case 0xde: NEED(2); it->type = CRAY__MP_MAP, it->n = rd16(p), r->p = p + 2; return 0;
    case 0xdf: NEED(4); it->type = CRAY__MP_MAP, it->n = rd32(p), r->p = p + 4; return 0;
    default: return CRAY_EBADBLOB; /* 0xc1 is never used */
  }
}

int cray__mp_skip(cray__mp_reader *r, int depth) {
  cray__mp_item it;
  int rc = cray__mp_next(r, &it);
  if (rc) return rc;
  if (it.type != CRAY__MP_ARRAY && it.type != CRAY__MP_MAP) return 0;
  if (depth <= 0) return CRAY_EBADBLOB;
  uint64_t count = it.type == CRAY__MP_MAP ? 2 * (uint64_t)it.n : it.n;
  /* Each element takes at least one byte: a count larger than what is left is a lie. */
  if (count > (uint64_t)(r->end - r->p)) return CRAY_EBADBLOB;
  for (uint64_t i = 0; i < count; i++)
    if ((rc = cray__mp_skip(r, depth - 1))) return rc;
  return 0;
}
