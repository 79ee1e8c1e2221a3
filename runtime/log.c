/*
 * log.c: see log.h for the design.
 *
 * A line is formatted into a buffer on the stack (a longer message is cut, marked with
 * "..."), then written with write(2) on fd 2, looping only over a partial write. stderr
 * is unbuffered in C, so lines keep their order with what the program writes there.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cray.h"
#include "task.h"

#define LINE_MAX_BYTES 2048

_Atomic int cray__log_level = CRAY__LOG_WARN;

static const char *const names[] = {"error", "warn", "info", "debug"};

static _Thread_local char thread_name[16];
static _Thread_local const cray__task *thread_task;

/* Whether stderr is a terminal, looked at in cray__log_setup; relaxed, a hint only. */
static _Atomic int on_terminal;

int cray__log_setup(const char *value, char *why, size_t whylen) {
  int level = CRAY__LOG_WARN;
  if (value && *value) {
    level = -1;
    for (int i = 0; i < (int)(sizeof names / sizeof *names); i++)
      if (strcmp(value, names[i]) == 0) level = i;
    if (level < 0) {
      snprintf(why, whylen, "CRAY_LOG=%.64s is not a log level: use error, warn, info or debug",
               value);
      return CRAY_EINVAL;
    }
  }
  /* relaxed: a setting, read alone (cray__log_on) */
  atomic_store_explicit(&cray__log_level, level, memory_order_relaxed);
  atomic_store_explicit(&on_terminal, isatty(2), memory_order_relaxed);
  return 0;
}

const char *cray__log_size(uint64_t n, char buf[32]) {
  static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  double v = (double)n;
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, u++;
  if (u == 0) snprintf(buf, 32, "%llu bytes", (unsigned long long)n);
  else snprintf(buf, 32, "%.1f %s", v, units[u]);
  return buf;
}

void cray__log_thread(const char *name) {
  snprintf(thread_name, sizeof thread_name, "%s", name ? name : "");
}

void cray__log_task(const cray__task *t) { thread_task = t; }

void cray__log(int level, const char *fmt, ...) {
  if (!cray__log_on(level)) return;
  char line[LINE_MAX_BYTES];
  size_t n = 0;
  /* relaxed: as in cray__log_setup */
  if (atomic_load_explicit(&on_terminal, memory_order_relaxed))
    n += (size_t)snprintf(line, sizeof line, "\r\033[K"); /* over the progress line */
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  localtime_r(&ts.tv_sec, &tm);
  n += (size_t)snprintf(line + n, sizeof line - n, "cray %02d:%02d:%02d.%03ld %s %s",
                        tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, names[level],
                        thread_name[0] ? thread_name : "driver");
  const cray__task *t = thread_task;
  if (t) {
    char id[33];
    cray_id_format(&t->id, id);
    n += (size_t)snprintf(line + n, sizeof line - n, " task %.128s %s",
                          t->name ? t->name : "?", id);
  }
  n += (size_t)snprintf(line + n, sizeof line - n, ": ");
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof line - n, fmt, ap);
  va_end(ap);
  if (m < 0) m = 0;
  if (n + (size_t)m >= sizeof line - 1) { /* cut: room for "...\n" */
    n = sizeof line - 5;
    memcpy(line + n, "...", 3);
    n += 3;
  } else {
    n += (size_t)m;
  }
  line[n++] = '\n';
  for (size_t off = 0; off < n;) {
    ssize_t w = write(2, line + off, n - off);
    if (w <= 0) break; /* nowhere to say it */
    off += (size_t)w;
  }
}
