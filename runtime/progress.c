/*
 * progress.c: see progress.h for the design.
 *
 * The thread sleeps on its condition variable (monotonic clock) for 100 ms between
 * redraws; stop sets `stop` under the mutex, signals, joins, then erases the line, so no
 * redraw comes after the erase. The runtime stops it first in cray_close, before the
 * scheduler and the store it reads go away.
 */
#include "progress.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "runtime.h"
#include "wait.h"

#define PERIOD_NS 100000000L /* 10 redraws a second at most */

struct cray__progress {
  cray_runtime *rt;
  int fd;
  double born;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stop; /* under mu */
};

void cray__progress_format(char *buf, size_t width, uint64_t done, uint64_t submitted,
                           uint64_t running, uint64_t failed, uint64_t actors,
                           uint64_t bytes, uint64_t spilled, double elapsed) {
  char line[256];
  snprintf(line, sizeof line,
           "cray: %llu/%llu tasks done, %llu running, %llu failed, %llu actors, "
           "store %.1f MiB, spilled %.1f MiB, %.1fs",
           (unsigned long long)done, (unsigned long long)submitted,
           (unsigned long long)running, (unsigned long long)failed,
           (unsigned long long)actors, (double)bytes / 1048576.0,
           (double)spilled / 1048576.0, elapsed);
  if (width > sizeof line) width = sizeof line;
  snprintf(buf, width, "%s", line);
}

static void draw(struct cray__progress *p) {
  cray__sched_stats ts = {0, 0, 0, 0};
  uint64_t actors = 0;
  /* acquire: the scheduler, once published, is whole */
  cray__sched *s = atomic_load_explicit(&p->rt->sched, memory_order_acquire);
  if (s) {
    cray__sched_stats_get(s, &ts);
    actors = cray__sched_actors_alive(s);
  }
  cray_store_stats st;
  cray_store_stats_get(p->rt, &st);
  struct winsize ws;
  size_t cols = ioctl(p->fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 ? ws.ws_col : 80;
  char line[300];
  line[0] = '\r';
  /* one column short of the width, so the cursor never wraps to a new line */
  cray__progress_format(line + 1, cols, ts.finished + ts.failed, ts.submitted, ts.running,
                        ts.failed, actors, st.bytes, st.spilled_bytes, cray__now() - p->born);
  strcat(line, "\033[K");
  ssize_t ignored = write(p->fd, line, strlen(line));
  (void)ignored; /* a terminal that refuses the line has nothing to show it on */
}

static void *progress_main(void *arg) {
  struct cray__progress *p = arg;
  pthread_mutex_lock(&p->mu);
  while (!p->stop) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += PERIOD_NS;
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    while (!p->stop && pthread_cond_timedwait(&p->cv, &p->mu, &ts) == 0) {
    }
    if (p->stop) break;
    pthread_mutex_unlock(&p->mu);
    draw(p);
    pthread_mutex_lock(&p->mu);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

int cray__progress_start(cray_runtime *rt, int fd) {
  if (rt->progress || !isatty(fd)) return 0;
  struct cray__progress *p = cray__calloc(1, sizeof *p);
  if (!p) return CRAY_ENOMEM;
  p->rt = rt;
  p->fd = fd;
  p->born = cray__now();
  pthread_mutex_init(&p->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&p->cv, &ca);
  pthread_condattr_destroy(&ca);
  if (pthread_create(&p->thread, NULL, progress_main, p) != 0) {
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    cray__free(p);
    return CRAY_ENOMEM;
  }
  rt->progress = p;
  return 1;
}

void cray__progress_stop(cray_runtime *rt) {
  struct cray__progress *p = rt->progress;
  if (!p) return;
  rt->progress = NULL;
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
  pthread_join(p->thread, NULL);
  ssize_t ignored = write(p->fd, "\r\033[K", 4);
  (void)ignored; /* as in draw */
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
  cray__free(p);
}
