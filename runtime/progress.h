/*
 * progress.h: a live progress line on a terminal (crayrun's, unless --no-progress).
 *
 * A thread of its own redraws one line on a terminal at most 10 times a second: tasks
 * done of submitted, running, failed, actors alive, the store's memory and spilled bytes,
 * time since start. It reads only counters (runtime/sched.h, cray_store_stats_get) and
 * writes with one write(2) per redraw, carriage return first and erase-to-end last, so the
 * line is replaced in place. Stopping erases it. Nothing is drawn when fd is not a
 * terminal.
 */
#ifndef CRAY_PROGRESS_H
#define CRAY_PROGRESS_H

#include "cray.h"

/* Starts rt's progress line on fd when fd is a terminal and none runs yet: 1 when it
 * started, 0 when fd is not a terminal or one runs, CRAY_ENOMEM. */
int cray__progress_start(cray_runtime *rt, int fd);
/* Stops rt's progress line and erases it; nothing when none runs. */
void cray__progress_stop(cray_runtime *rt);

/* Formats the line for these figures into buf (at most `width` columns). */
void cray__progress_format(char *buf, size_t width, uint64_t done, uint64_t submitted,
                           uint64_t running, uint64_t failed, uint64_t actors,
                           uint64_t bytes, uint64_t spilled, double elapsed);

#endif
