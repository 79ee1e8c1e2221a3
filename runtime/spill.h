/*
 * spill.h: the spill environment, where objects past the memory budget go: one LMDB
 * environment per runtime, in a private directory cray makes inside the spill directory
 * (or $TMPDIR) at the first write, keyed by the 16-byte id.
 *
 * Writes (cray__spill_write, cray__spill_delete) come from one thread only, the store's
 * spill thread, in batched write transactions. Reads come from any thread, each in a
 * short read-only transaction of its own (MDB_NOTLS), and copy the bytes out.
 *
 * The cap (--spill-max) is kept here, from an estimate of the pages each value takes,
 * and the map size, set once before open, is the cap plus an eighth: LMDB's B-tree and
 * free list need pages of their own, and a delete copies pages too, so a spill space
 * that is full by the cap can still delete and make room. Without a cap the map is the
 * size of the file system, and the disk says no first. Durability is not wanted (the
 * file dies with the runtime), so nothing is synced; nor is MDB_WRITEMAP used, because a
 * write through the map to a full disk is a SIGBUS, where a write(2) is an error we can
 * report.
 *
 * Errors are LMDB's (negative MDB_* codes) or errno values; cray__spill_why names them
 * for people ("the disk is full").
 */
#ifndef CRAY_SPILL_H
#define CRAY_SPILL_H

#include <stddef.h>
#include <stdint.h>

#include "cray.h"

typedef struct cray__spill cray__spill;

typedef struct cray__spill_item {
  cray_id id;
  const uint8_t *data;
  size_t len;
} cray__spill_item;

/* A spill space in dir, or when dir is NULL under $TMPDIR; nothing is made there until
 * the first write, which makes a fresh directory (mode 0700) inside it for the
 * environment. A dir that does not exist is created now (and removed by close if it is
 * empty then). max: bytes of disk (0: no cap). When dir (or $TMPDIR) is not a directory
 * cray can write in, returns CRAY_ESYS and writes the reason into why[0..whylen). */
int cray__spill_open(cray__spill **out, const char *dir, size_t max, char *why, size_t whylen);
/* Closes the environment and removes what cray made: its files, its directory, and the
 * spill directory when cray made that and it is empty. */
void cray__spill_close(cray__spill *sp);

/* Writes items[0..n), in as few transactions as the memory they hold allows (the first
 * write makes the environment: an errno value when that fails). When the
 * cap is reached at item k, the first k are written (MDB_MAP_FULL); on another error,
 * those of the failing transaction are not. *done: how many were written, from the
 * first. 0 or an error. */
int cray__spill_write(cray__spill *sp, const cray__spill_item *items, size_t n, size_t *done);
/* Deletes the values of items[0..n) (id and len; data unused) in one transaction; ids
 * not there are ignored. 0 or an error. */
int cray__spill_delete(cray__spill *sp, const cray__spill_item *items, size_t n);
/* Copies the value of id, which must be len bytes, into dst. 0 or an error
 * (MDB_NOTFOUND, or CRAY_EBADBLOB for a length that differs). */
int cray__spill_read(cray__spill *sp, const cray_id *id, uint8_t *dst, size_t len);

/* Removes the files and directories of every open environment, at once; for a signal
 * handler about to end the process (it calls only async-signal-safe functions). */
void cray__spill_remove_now(void);

/* Removes the private directory and its files now, from any thread, and the spill
 * directory when cray made it and it is empty, leaving sp open: for a runtime that is
 * abandoned with threads that may still use it (its mapping stays valid). */
void cray__spill_abandon(cray__spill *sp);

/* A short text for an error of the functions above. */
const char *cray__spill_why(int err);
/* The private directory once the first write made it, the directory it goes in before. */
const char *cray__spill_dir(const cray__spill *sp);
/* The cap in bytes (0: none), and the bytes the values take on disk (an estimate in
 * whole pages, the measure the cap is checked against). */
uint64_t cray__spill_cap(const cray__spill *sp);
uint64_t cray__spill_used(const cray__spill *sp);
/* How many records the environment holds: a value takes one per 64 MiB (a read
 * transaction; for tests). */
uint64_t cray__spill_count(cray__spill *sp);

#endif
