/*
 * spill.c: see spill.h. The environment lives in a private directory (mode 0700) that
 * cray makes with mkdtemp inside the base directory (the user's spill directory, or
 * $TMPDIR) when the first value is written, so a run that never spills leaves no trace
 * and no file of anyone else's is ever reused or removed: closing removes LMDB's two files
 * and that directory, and the base directory only when cray made it and it is empty.
 *
 * The spill thread is the only writer, and the one that opens the environment; `opened`
 * publishes dir, env and psize to the threads that read values it wrote (they learn of a
 * value through the store, after its write) or describe the spill space.
 *
 * The directories of open environments are also listed in `live`, a fixed table that a
 * signal handler can walk (cray__spill_remove_now) with nothing but atomic loads, strlen,
 * memcpy, unlink and rmdir.
 */
#include "spill.h"

#include <errno.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "id.h"
#include "log.h"
#include "trace.h"

#define MIN_MAP ((size_t)256 << 10)
#define MAX_READERS 1024
#define MAX_LIVE 16   /* environments cray__spill_remove_now can find */
#define DIR_MAX 4000  /* the longest directory they can have */

/* A slot is FREE, TAKEN while its owner writes the directory, or READY to be read. */
enum { FREE, TAKEN, READY };
static struct {
  _Atomic int state;
  char dir[DIR_MAX];
} live[MAX_LIVE];

struct cray__spill {
  MDB_env *env;
  MDB_dbi dbi;
  char *base;               /* where the private directory goes */
  int made_base;            /* cray made base (the user's directory was missing) */
  char *dir;                /* the private directory, once made */
  int slot;                 /* its entry in `live`, or -1 */
  _Atomic int opened;       /* dir and env are made (set once, by the spill thread) */
  uint64_t cap;             /* 0: none */
  unsigned psize;           /* LMDB's page size */
  _Atomic uint64_t used;    /* estimate, see cost(); written by the spill thread only */
  int warned;               /* "spilling started" was logged (spill thread only) */
};

/* The disk a value of len bytes takes: whole overflow pages beyond half a page, else its
 * share of a leaf page (node header, key and value, on pages kept half full or more). */
static uint64_t cost(const cray__spill *sp, size_t len) {
  size_t node = 8 + 16 + len;
  if (node > sp->psize / 2 - 16) return (len + 16 + sp->psize - 1) / sp->psize * sp->psize;
  return 2 * (uint64_t)(node + 2);
}

static int refuse(char *why, size_t whylen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, whylen, fmt, ap);
  va_end(ap);
  return CRAY_ESYS;
}

/* Removes LMDB's files in dir and dir itself (which holds nothing else). Safe in a signal
 * handler. */
static void remove_files(const char *dir) {
  static const char *const files[] = {"/data.mdb", "/lock.mdb"};
  size_t n = strlen(dir);
  char path[DIR_MAX + 16];
  if (n >= DIR_MAX) return;
  memcpy(path, dir, n);
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    memcpy(path + n, files[i], strlen(files[i]) + 1);
    unlink(path);
  }
  rmdir(dir);
}

static void list_live(cray__spill *sp) {
  sp->slot = -1;
  if (strlen(sp->dir) >= DIR_MAX) return;
  for (int i = 0; i < MAX_LIVE; i++) {
    int expected = FREE;
    /* Relaxed: the slot is only claimed here; READY below publishes its contents. */
    if (!atomic_compare_exchange_strong_explicit(&live[i].state, &expected, TAKEN,
                                                 memory_order_relaxed, memory_order_relaxed))
      continue;
    memcpy(live[i].dir, sp->dir, strlen(sp->dir) + 1);
    /* Release: a reader that sees READY sees the whole directory name. */
    atomic_store_explicit(&live[i].state, READY, memory_order_release);
    sp->slot = i;
    return;
  }
}

static void unlist_live(cray__spill *sp) {
  /* Release: the slot may be reused once the directory is gone. */
  if (sp->slot >= 0) atomic_store_explicit(&live[sp->slot].state, FREE, memory_order_release);
  sp->slot = -1;
}

void cray__spill_remove_now(void) {
  for (int i = 0; i < MAX_LIVE; i++)
    /* Acquire: pairs with list_live's release. */
    if (atomic_load_explicit(&live[i].state, memory_order_acquire) == READY)
      remove_files(live[i].dir);
}

/* Removes the private directory and what is in it. */
static void remove_dir(cray__spill *sp) {
  unlist_live(sp);
  remove_files(sp->dir);
  cray__free(sp->dir);
  sp->dir = NULL;
}

static void free_spill(cray__spill *sp) {
  if (sp->made_base) rmdir(sp->base);
  cray__free(sp->base);
  cray__free(sp);
}

/* Whether cray may make its directory in dir: it is a directory it can write in. */
static int usable(const char *dir) {
  struct stat st;
  if (stat(dir, &st) != 0) return errno;
  if (!S_ISDIR(st.st_mode)) return ENOTDIR;
  return access(dir, W_OK | X_OK) == 0 ? 0 : errno;
}

/* The base directory: $TMPDIR, or the user's (made when missing). Nothing goes in it yet. */
static int set_base(cray__spill *sp, const char *dir, char *why, size_t whylen) {
  int err;
  if (!dir) {
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = "/tmp";
    if ((err = usable(tmp)))
      return refuse(why, whylen, "cannot make a spill directory under '%s' ($TMPDIR): %s", tmp,
                    strerror(err));
    dir = tmp;
  } else if (mkdir(dir, 0700) == 0) {
    sp->made_base = 1;
  } else if (errno != EEXIST) {
    return refuse(why, whylen, "cannot use spill directory '%s': %s", dir, strerror(errno));
  }
  if ((err = usable(dir))) {
    if (sp->made_base) rmdir(dir);
    sp->made_base = 0;
    return refuse(why, whylen, "cannot use spill directory '%s': %s", dir, strerror(err));
  }
  if (!(sp->base = cray__strdup(dir))) {
    if (sp->made_base) rmdir(dir);
    sp->made_base = 0;
    return CRAY_ENOMEM;
  }
  return 0;
}

/* The cap and an eighth, or the size of the file system (the disk says no first). */
static uint64_t map_size(const char *dir, size_t cap) {
  uint64_t size = (uint64_t)cap + cap / 8 + ((uint64_t)1 << 20);
  if (!cap) {
    struct statvfs fs;
    size = statvfs(dir, &fs) == 0 ? (uint64_t)fs.f_blocks * fs.f_frsize : 0;
    if (size < ((uint64_t)1 << 30)) size = (uint64_t)1 << 30;
    if (size > ((uint64_t)1 << 42)) size = (uint64_t)1 << 42;
  }
  if (size < MIN_MAP) size = MIN_MAP;
  long page = sysconf(_SC_PAGESIZE);
  return (size + (uint64_t)page - 1) / (uint64_t)page * (uint64_t)page;
}

int cray__spill_open(cray__spill **out, const char *dir, size_t max, char *why, size_t whylen) {
  cray__spill *sp = cray__calloc(1, sizeof *sp);
  if (!sp) return CRAY_ENOMEM;
  int rc = set_base(sp, dir, why, whylen);
  if (rc) {
    cray__free(sp);
    return rc;
  }
  sp->cap = max;
  sp->slot = -1;
  atomic_init(&sp->used, 0);
  atomic_init(&sp->opened, 0);
  *out = sp;
  return 0;
}

/* Makes the private directory and the environment in it, on the spill thread's first
 * write. 0, or an errno or LMDB code (nothing is left behind then). */
static int open_env(cray__spill *sp) {
  /* Relaxed: only this thread sets it. */
  if (atomic_load_explicit(&sp->opened, memory_order_relaxed)) return 0;
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/cray-spill-XXXXXX", sp->base);
  if (!mkdtemp(dir)) return errno;
  if (!(sp->dir = cray__strdup(dir))) {
    rmdir(dir);
    return ENOMEM;
  }
  list_live(sp);
  MDB_txn *txn;
  MDB_stat st;
  int rc;
  if ((rc = mdb_env_create(&sp->env)) == 0 &&
      (rc = mdb_env_set_mapsize(sp->env, map_size(sp->dir, sp->cap))) == 0 &&
      (rc = mdb_env_set_maxreaders(sp->env, MAX_READERS)) == 0 &&
      (rc = mdb_env_open(sp->env, sp->dir, MDB_NOTLS | MDB_NOSYNC | MDB_NOMETASYNC, 0600)) == 0 &&
      (rc = mdb_txn_begin(sp->env, NULL, 0, &txn)) == 0) {
    if ((rc = mdb_dbi_open(txn, NULL, 0, &sp->dbi)) != 0) mdb_txn_abort(txn);
    else rc = mdb_txn_commit(txn);
  }
  if (rc == 0) rc = mdb_env_stat(sp->env, &st);
  if (rc) {
    if (sp->env) mdb_env_close(sp->env);
    sp->env = NULL;
    remove_dir(sp);
    return rc;
  }
  sp->psize = st.ms_psize;
  /* Release: a thread that sees it set sees dir, env and psize. */
  atomic_store_explicit(&sp->opened, 1, memory_order_release);
  return 0;
}

/* Whether the environment is there (for threads other than the spill thread). */
static int is_open(const cray__spill *sp) {
  /* Acquire: pairs with open_env's release. */
  return atomic_load_explicit(&sp->opened, memory_order_acquire);
}

void cray__spill_abandon(cray__spill *sp) {
  if (is_open(sp)) remove_files(sp->dir);
  if (sp->made_base) rmdir(sp->base);
}

void cray__spill_close(cray__spill *sp) {
  if (!sp) return;
  if (is_open(sp)) {
    mdb_env_close(sp->env);
    remove_dir(sp);
  }
  free_spill(sp);
}

/* ---- values in chunks ---- */

/* A value is kept in chunks of at most CHUNK bytes, keyed by its id and the chunk's
 * number (20 bytes, big-endian). LMDB holds a write transaction's pages in memory until
 * it commits, takes a value bigger than its dirty-page list (512 MiB) down a path that
 * leaks that list, and moves each value with one write(2), which stops at 2 GiB; chunks
 * keep every value, whatever its size, on the plain path. A batch is committed as soon
 * as it holds CHUNK bytes, so a transaction's memory stays bounded by its largest value
 * plus CHUNK. */
#define CHUNK ((size_t)64 << 20)

static size_t nchunks(size_t len) { return len ? (len + CHUNK - 1) / CHUNK : 1; }

static size_t chunk_len(size_t len, size_t k) {
  return len - k * CHUNK < CHUNK ? len - k * CHUNK : CHUNK;
}

static MDB_val chunk_key(uint8_t key[20], const cray_id *id, size_t k) {
  cray__id_store(id, key);
  key[16] = (uint8_t)(k >> 24), key[17] = (uint8_t)(k >> 16);
  key[18] = (uint8_t)(k >> 8), key[19] = (uint8_t)k;
  return (MDB_val){20, key};
}

static uint64_t value_cost(const cray__spill *sp, size_t len) {
  uint64_t c = 0;
  for (size_t k = 0; k < nchunks(len); k++) c += cost(sp, chunk_len(len, k));
  return c;
}

/* ---- writing (the spill thread) ---- */

static int put_value(cray__spill *sp, MDB_txn *txn, const cray__spill_item *it) {
  int rc = 0;
  for (size_t k = 0; k < nchunks(it->len) && rc == 0; k++) {
    uint8_t key[20];
    MDB_val kv = chunk_key(key, &it->id, k);
    MDB_val vv = {chunk_len(it->len, k), (void *)(it->data + k * CHUNK)};
    rc = mdb_put(txn, sp->dbi, &kv, &vv, 0);
  }
  return rc;
}

/* Commits *txn, which holds the values up to `through` and brings the estimate to used. */
static int commit(cray__spill *sp, MDB_txn **txn, uint64_t used, size_t through, size_t *done) {
  int rc = mdb_txn_commit(*txn);
  *txn = NULL;
  if (rc == 0) {
    *done = through;
    atomic_store_explicit(&sp->used, used, memory_order_relaxed);
  }
  return rc;
}

static int write_items(cray__spill *sp, const cray__spill_item *items, size_t n, size_t *done) {
  uint64_t used = atomic_load_explicit(&sp->used, memory_order_relaxed);
  MDB_txn *txn = NULL;
  size_t pending = 0, i;
  int rc = open_env(sp), full = 0;
  *done = 0;
  if (rc) return rc;
  for (i = 0; i < n; i++) {
    uint64_t c = value_cost(sp, items[i].len);
    if (sp->cap && used + c > sp->cap) {
      full = MDB_MAP_FULL; /* the values before it still go */
      break;
    }
    if (!txn && (rc = mdb_txn_begin(sp->env, NULL, 0, &txn)) != 0) {
      txn = NULL;
      break;
    }
    if ((rc = put_value(sp, txn, &items[i])) != 0) break;
    used += c;
    pending += items[i].len;
    if (pending >= CHUNK) {
      pending = 0;
      if ((rc = commit(sp, &txn, used, i + 1, done)) != 0) break;
    }
  }
  if (txn && rc == 0) rc = commit(sp, &txn, used, i, done);
  if (txn) mdb_txn_abort(txn); /* a put failed: what it held is not written */
  if (*done && !sp->warned) {
    sp->warned = 1;
    uint64_t bytes = 0;
    for (size_t k = 0; k < *done; k++) bytes += items[k].len;
    char size[32];
    cray__log(CRAY__LOG_WARN,
              "spilling started: the object store is past its memory budget (-m/--memory); "
              "%zu objects (%s) written to %s, and more as needed",
              *done, cray__log_size(bytes, size), sp->dir);
  }
  return rc ? rc : full;
}

int cray__spill_write(cray__spill *sp, const cray__spill_item *items, size_t n, size_t *done) {
  if (!CRAY__TRACING()) return write_items(sp, items, n, done);
  cray__trace_thread(CRAY__TRACE_SPILL, 0); /* only the spill thread writes */
  uint64_t t0 = cray__trace_stamp();
  int rc = write_items(sp, items, n, done);
  uint64_t bytes = 0;
  for (size_t i = 0; i < *done; i++) bytes += items[i].len;
  cray__trace_spill(t0, *done, bytes);
  return rc;
}

int cray__spill_delete(cray__spill *sp, const cray__spill_item *items, size_t n) {
  MDB_txn *txn;
  if (!is_open(sp)) return 0; /* nothing was written */
  int rc = mdb_txn_begin(sp->env, NULL, 0, &txn);
  if (rc) return rc;
  uint64_t freed = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    for (size_t k = 0; k < nchunks(items[i].len) && rc == 0; k++) {
      uint8_t key[20];
      MDB_val kv = chunk_key(key, &items[i].id, k);
      rc = mdb_del(txn, sp->dbi, &kv, NULL);
      if (rc == 0) freed += cost(sp, chunk_len(items[i].len, k));
      if (rc == MDB_NOTFOUND) rc = 0;
    }
  }
  if (rc) {
    mdb_txn_abort(txn);
    return rc;
  }
  if ((rc = mdb_txn_commit(txn)) == 0)
    atomic_fetch_sub_explicit(&sp->used, freed, memory_order_relaxed);
  return rc;
}

/* ---- reading (any thread) ---- */

static int read_value(cray__spill *sp, const cray_id *id, uint8_t *dst, size_t len) {
  MDB_txn *txn;
  int rc;
  if (!is_open(sp)) return MDB_NOTFOUND;
  /* Every reader slot taken (a thousand reads at once): wait for one. */
  for (int tries = 0; (rc = mdb_txn_begin(sp->env, NULL, MDB_RDONLY, &txn)) == MDB_READERS_FULL &&
                      tries < 10000;
       tries++) {
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  if (rc) return rc;
  for (size_t k = 0; k < nchunks(len) && rc == 0; k++) {
    uint8_t key[20];
    MDB_val kv = chunk_key(key, id, k), v;
    size_t want = chunk_len(len, k);
    rc = mdb_get(txn, sp->dbi, &kv, &v);
    if (rc == 0 && v.mv_size != want) rc = CRAY_EBADBLOB;
    if (rc == 0 && want) memcpy(dst + k * CHUNK, v.mv_data, want);
  }
  mdb_txn_abort(txn);
  return rc;
}

/* ---- describing ---- */

const char *cray__spill_why(int err) {
  switch (err) {
    case MDB_MAP_FULL:
      return "the spill space is full";
    case ENOSPC:
    case EDQUOT:
      return "the disk is full";
    case EFBIG:
      return "the spill file has reached the largest file size allowed";
    case CRAY_EBADBLOB:
      return "the spill file holds a value of the wrong size";
    case EIO:
      return "a write to the spill file failed (a full disk, or an I/O error)";
    default:
      return err < 0 && err > -100 ? cray_strerror(err) : mdb_strerror(err);
  }
}

const char *cray__spill_dir(const cray__spill *sp) { return is_open(sp) ? sp->dir : sp->base; }

uint64_t cray__spill_cap(const cray__spill *sp) { return sp->cap; }

uint64_t cray__spill_used(const cray__spill *sp) {
  return atomic_load_explicit(&sp->used, memory_order_relaxed);
}

uint64_t cray__spill_count(cray__spill *sp) {
  MDB_txn *txn;
  MDB_stat st;
  if (!is_open(sp) || mdb_txn_begin(sp->env, NULL, MDB_RDONLY, &txn)) return 0;
  int rc = mdb_stat(txn, sp->dbi, &st);
  mdb_txn_abort(txn);
  return rc ? 0 : st.ms_entries;
}

int cray__spill_read(cray__spill *sp, const cray_id *id, uint8_t *dst, size_t len) {
  if (!CRAY__TRACING()) return read_value(sp, id, dst, len);
  uint64_t t0 = cray__trace_stamp();
  int rc = read_value(sp, id, dst, len);
  if (rc == 0) cray__trace_restore(t0, id, len);
  return rc;
}
