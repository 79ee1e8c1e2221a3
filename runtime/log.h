/*
 * log.h: cray's log lines on stderr, filtered by CRAY_LOG.
 *
 * CRAY_LOG=error|warn|info|debug (default warn) sets the level when a runtime opens
 * (cray__log_setup). A line reads
 *     cray 12:00:01.234 warn w0 task double 3f2a...: spilling started: ...
 * the local time, the level, the thread (w0, w1.. for workers, numbered as
 * cray.context().worker; "spill"; else "driver"), the task running on it when there is one
 * (name and id), then the message. Each line goes
 * out in one write(2), so lines from different threads never mix; on a terminal it first
 * erases the live progress line (runtime/progress.h), which redraws below it.
 *
 * Checking whether a level is on is one relaxed load (cray__log_on), so a call site costs
 * nothing more while its level is off. Threads name themselves (cray__log_thread) and the
 * executor names the task it runs (cray__log_task); both are thread-local.
 */
#ifndef CRAY_LOG_H
#define CRAY_LOG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum { CRAY__LOG_ERROR, CRAY__LOG_WARN, CRAY__LOG_INFO, CRAY__LOG_DEBUG };

extern _Atomic int cray__log_level;

/* Whether lines of `level` are written. */
static inline int cray__log_on(int level) {
  /* relaxed: a setting read alone; a line more or less around a change is harmless */
  return level <= atomic_load_explicit(&cray__log_level, memory_order_relaxed);
}

/* Sets the level from `value` (CRAY_LOG's; NULL or "" for the default). 0, or
 * CRAY_EINVAL with the reason in why[0..whylen), naming the value and the levels. */
int cray__log_setup(const char *value, char *why, size_t whylen);

/* Writes one line at `level` when it is on. */
void cray__log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* n bytes as text for people ("512 bytes", "1.5 MiB"), in buf; returns buf. */
const char *cray__log_size(uint64_t n, char buf[32]);

/* Names the calling thread in its lines (at most 15 characters kept). */
void cray__log_thread(const char *name);
/* The task running on the calling thread, shown in its lines; NULL when none. */
struct cray__task;
void cray__log_task(const struct cray__task *t);

#endif
