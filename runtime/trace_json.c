/*
 * trace_json.c: the recorder's events (trace.h) as Chrome trace-event JSON, which
 * Perfetto and chrome://tracing open (docs/observability.md shows how to read it).
 *
 * One process (pid 1, or rank + 1 in a cluster: pid 0 means the idle process to
 * Perfetto; a job's timeline has one per rank), one thread track per worker, the driver,
 * the spill thread and any other thread that recorded. Events are sorted by time and joined by task id:
 * - a stretch of a task's run is an "X" slice on its worker, named by the task's name
 *   (the function's, or Class.method), with args task, actor, arg_bytes, result_bytes,
 *   outcome (finished, failed with kind, cancelled, retried, suspended) and attempt;
 *   a task that ended without running (cancelled, or an argument failed) is a slice of
 *   one nanosecond where it ended;
 * - a submission is a slice "submit NAME" of two nanoseconds on the submitter's track,
 *   with a flow ("s" in it, "f" with binding point "e" in the task's first slice);
 * - the resolution that released a task waiting for arguments is a slice "release NAME"
 *   inside the producer's slice, with a flow of category "dep" to the released task;
 * - a wait that blocks its thread (the driver's cray.get) is a slice named by the call;
 * - a wait inside a task is an async slice ("b"/"e", category "wait") named by the call
 *   that waited (cray.get, cray.wait, cray.sleep, an I/O call), from the wait to the
 *   task's next stretch or its end;
 * - spill writes and restores are slices with their bytes.
 * Flows are written only when both their ends' slices are, so every arrow joins two
 * slices. The top-level "metadata" says how many events were dropped.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "sched.h"
#include "trace.h"

/* A task as the events tell it. */
typedef struct tinfo {
  cray_id id;
  int used;
  const cray__tev *submit, *end, *first_run, *last_run;
  uint64_t arg_bytes;
  uint64_t next_start; /* while reading backwards: the next run or end */
  int attempt;         /* while writing: stretches that raised or were lost so far */
} tinfo;

typedef struct table {
  tinfo *v;
  size_t mask;
} table;

static size_t hash_id(const cray_id *id) {
  uint64_t h = (id->hi ^ (id->lo * 0x9e3779b97f4a7c15u));
  return (size_t)(h ^ h >> 29);
}

static tinfo *find(table *t, const cray_id *id) {
  for (size_t i = hash_id(id) & t->mask;; i = (i + 1) & t->mask) {
    tinfo *x = &t->v[i];
    if (!x->used) {
      x->used = 1;
      x->id = *id;
      return x;
    }
    if (x->id.hi == id->hi && x->id.lo == id->lo) return x;
  }
}

static int by_time(const void *a, const void *b) {
  const cray__tev *x = a, *y = b;
  return x->t0 < y->t0 ? -1 : x->t0 > y->t0;
}

static void str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c < 0x20) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

/* A time in microseconds, to the nanosecond. */
static void us(FILE *f, const char *key, uint64_t ns) {
  fprintf(f, ",\"%s\":%" PRIu64 ".%03" PRIu64, key, ns / 1000, ns % 1000);
}

static void hex(char out[33], const cray_id *id) {
  snprintf(out, 33, "%016" PRIx64 "%016" PRIx64, id->hi, id->lo);
}

typedef struct out {
  FILE *f;
  int pid, first; /* pid: the process of the event being written */
} out;

/* Opens an event: {"ph":ph,"pid":..,"tid":..,"ts":..,"name":name */
static void open_ev(out *o, const char *ph, int tid, uint64_t ts, const char *prefix, const char *name) {
  fprintf(o->f, "%s\n{\"ph\":\"%s\",\"pid\":%d,\"tid\":%d", o->first ? "" : ",", ph, o->pid, tid);
  o->first = 0;
  us(o->f, "ts", ts);
  fputs(",\"name\":", o->f);
  if (!prefix) {
    str(o->f, name);
    return;
  }
  size_t n = strlen(prefix) + strlen(name) + 1;
  char *both = cray__malloc(n);
  if (both) snprintf(both, n, "%s%s", prefix, name);
  str(o->f, both ? both : name);
  cray__free(both);
}

/* A flow end of category cat for task id at ts on tid. */
static void flow(out *o, const char *ph, const char *cat, const cray_id *id, int tid, uint64_t ts) {
  char h[33];
  hex(h, id);
  open_ev(o, ph, tid, ts, NULL, cat);
  fprintf(o->f, ",\"cat\":\"%s\",\"id\":\"%s\"%s}", cat, h, ph[0] == 'f' ? ",\"bp\":\"e\"" : "");
}

/* The middle of a slice from t0 lasting dur. */
static uint64_t mid(uint64_t t0, uint64_t dur) { return t0 + dur / 2; }

static uint64_t dur_of(const cray__tev *e) { return e->t1 > e->t0 ? e->t1 - e->t0 : 1; }

static const char *name_or(uint32_t name) {
  const char *s = cray__trace_name(name);
  return *s ? s : "task";
}

/* What a stretch of a run says of its task: its outcome, and the kind when it failed. */
static const char *outcome_of(const tinfo *ti, const cray__tev *run, const char **kind) {
  *kind = NULL;
  int last = run == ti->last_run;
  if (!last) return run->aux == CRAY__RUN_RAISED || run->aux == CRAY__RUN_LOST ? "retried" : "suspended";
  if (run->aux == CRAY__RUN_SUSPENDED && !ti->end) return "suspended";
  if (!ti->end) return run->aux == CRAY__RUN_DONE ? "finished" : "failed";
  if (ti->end->aux == CRAY__TRACE_FINISHED) return "finished";
  *kind = cray__trace_name(ti->end->name2);
  return ti->end->aux == CRAY__TRACE_CANCELLED ? "cancelled" : "failed";
}

static void task_slice(out *o, const tinfo *ti, const cray__tev *e, int attempt) {
  char h[33];
  hex(h, &ti->id);
  uint64_t d = e->type == CRAY__TEV_RUN ? dur_of(e) : 2;
  open_ev(o, "X", e->tid, e->t0, NULL, name_or(e->name));
  us(o->f, "dur", d);
  fprintf(o->f, ",\"cat\":\"task\",\"args\":{\"task\":\"%s\"", h);
  if (e->type == CRAY__TEV_RUN && (e->actor.hi || e->actor.lo)) {
    char a[33];
    hex(a, &e->actor);
    fprintf(o->f, ",\"actor\":\"%s\"", a);
  }
  fprintf(o->f, ",\"arg_bytes\":%" PRIu64, ti->arg_bytes);
  const char *kind = NULL;
  const char *outcome = e->type == CRAY__TEV_RUN ? outcome_of(ti, e, &kind)
                      : e->aux == CRAY__TRACE_CANCELLED ? "cancelled" : "failed";
  if (e->type == CRAY__TEV_END && e->aux != CRAY__TRACE_FINISHED) kind = cray__trace_name(e->name2);
  if (e->type == CRAY__TEV_END && e->aux == CRAY__TRACE_FINISHED) outcome = "finished";
  if (ti->end && (e == ti->last_run || e == ti->end))
    fprintf(o->f, ",\"result_bytes\":%" PRIu64, ti->end->bytes);
  fprintf(o->f, ",\"outcome\":\"%s\"", outcome);
  if (kind && *kind) {
    fputs(",\"kind\":", o->f);
    str(o->f, kind);
  }
  fprintf(o->f, ",\"attempt\":%d}}", attempt);
}

int cray__trace_json(FILE *f, cray__tev *ev, size_t n, uint64_t dropped, int cluster) {
  qsort(ev, n, sizeof *ev, by_time);
  table t = {0};
  size_t cap = 64;
  while (cap < 2 * n) cap *= 2;
  t.v = cray__calloc(cap, sizeof *t.v);
  if (!t.v) return CRAY_ENOMEM;
  t.mask = cap - 1;
  for (size_t i = 0; i < n; i++) {
    cray__tev *e = &ev[i];
    if (e->type == CRAY__TEV_SPILL || e->type == CRAY__TEV_RESTORE || e->type == CRAY__TEV_BLOCK)
      continue;
    tinfo *ti = find(&t, &e->id);
    if (e->type == CRAY__TEV_SUBMIT) ti->submit = e, ti->arg_bytes = e->bytes;
    else if (e->type == CRAY__TEV_END) ti->end = e;
    else if (e->type == CRAY__TEV_RUN) {
      if (!ti->first_run) ti->first_run = e;
      ti->last_run = e;
    }
  }
  /* a wait lasts until its task's next stretch or its end: t1, read backwards */
  for (size_t i = n; i-- > 0;) {
    cray__tev *e = &ev[i];
    if (e->type == CRAY__TEV_SPILL || e->type == CRAY__TEV_RESTORE || e->type == CRAY__TEV_BLOCK)
      continue;
    tinfo *ti = find(&t, &e->id);
    if (e->type == CRAY__TEV_RUN || e->type == CRAY__TEV_END) ti->next_start = e->t0;
    else if (e->type == CRAY__TEV_WAIT) e->t1 = ti->next_start;
  }

  out o = {f, 1, 1};
  fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[", f);
  /* process and thread names: each process, and each of its threads, once */
  int seen[1024][2], nseen = 0;
  for (size_t i = 0; i < n; i++) {
    int tid = ev[i].tid, k = 0;
    while (k < nseen && (seen[k][0] != ev[i].pid || seen[k][1] != tid)) k++;
    if (k < nseen || nseen == 1024) continue;
    o.pid = ev[i].pid;
    for (k = 0; k < nseen && seen[k][0] != o.pid; k++) continue;
    if (k == nseen) {
      char pname[32];
      snprintf(pname, sizeof pname, cluster ? "cray rank %d" : "cray", o.pid - 1);
      open_ev(&o, "M", 0, 0, NULL, "process_name");
      fputs(",\"args\":{\"name\":", f);
      str(f, pname);
      fputs("}}", f);
      open_ev(&o, "M", 0, 0, NULL, "process_sort_index");
      fprintf(f, ",\"args\":{\"sort_index\":%d}}", o.pid);
    }
    seen[nseen][0] = o.pid;
    seen[nseen++][1] = tid;
    char name[32];
    int sort;
    cray__trace_tid_name(tid, name, sizeof name, &sort);
    open_ev(&o, "M", tid, 0, NULL, "thread_name");
    fputs(",\"args\":{\"name\":", f);
    str(f, name);
    fputs("}}", f);
    open_ev(&o, "M", tid, 0, NULL, "thread_sort_index");
    fprintf(f, ",\"args\":{\"sort_index\":%d}}", sort);
  }

  for (size_t i = 0; i < n; i++) {
    const cray__tev *e = &ev[i];
    char h[33];
    hex(h, &e->id);
    o.pid = e->pid;
    switch (e->type) {
    case CRAY__TEV_SUBMIT: {
      tinfo *ti = find(&t, &e->id);
      /* two nanoseconds: a mark that nests in the slice around it, with the flow inside */
      open_ev(&o, "X", e->tid, e->t0, "submit ", name_or(e->name));
      us(f, "dur", 2);
      fprintf(f, ",\"cat\":\"submit\",\"args\":{\"task\":\"%s\",\"arg_bytes\":%" PRIu64 "}}", h, e->bytes);
      if (ti->first_run || ti->end) flow(&o, "s", "submit", &e->id, e->tid, e->t0 + 1);
      break;
    }
    case CRAY__TEV_RUN: {
      tinfo *ti = find(&t, &e->id);
      task_slice(&o, ti, e, ti->attempt + 1);
      if (e->aux == CRAY__RUN_RAISED || e->aux == CRAY__RUN_LOST) ti->attempt++;
      if (e == ti->first_run) {
        uint64_t at = mid(e->t0, dur_of(e));
        if (ti->submit) flow(&o, "f", "submit", &e->id, e->tid, at);
      }
      break;
    }
    case CRAY__TEV_END: {
      tinfo *ti = find(&t, &e->id);
      if (ti->first_run) break; /* told by its slices */
      task_slice(&o, ti, e, 1);
      if (ti->submit) flow(&o, "f", "submit", &e->id, e->tid, e->t0 + 1);
      break;
    }
    case CRAY__TEV_RELEASE: {
      tinfo *ti = find(&t, &e->id);
      if (!ti->first_run) break;
      open_ev(&o, "X", e->tid, e->t0, "release ", name_or(e->name));
      us(f, "dur", 2);
      fprintf(f, ",\"cat\":\"dep\",\"args\":{\"task\":\"%s\"}}", h);
      flow(&o, "s", "dep", &e->id, e->tid, e->t0 + 1);
      o.pid = ti->first_run->pid;
      flow(&o, "f", "dep", &e->id, ti->first_run->tid, mid(ti->first_run->t0, dur_of(ti->first_run)));
      break;
    }
    case CRAY__TEV_WAIT: {
      uint64_t until = e->t1; /* 0: still waiting */
      if (!until) break;
      char id[64];
      snprintf(id, sizeof id, "%s.%zu", h, i);
      for (int end = 0; end < 2; end++) {
        open_ev(&o, end ? "e" : "b", e->tid, end ? until : e->t0, NULL, e->ptr ? e->ptr : "wait");
        fprintf(f, ",\"cat\":\"wait\",\"id\":\"%s\"", id);
        if (!end) {
          fputs(",\"args\":{\"task\":", f);
          str(f, h);
          fputs(",\"in\":", f);
          str(f, name_or(e->name));
          fputc('}', f);
        }
        fputc('}', f);
      }
      break;
    }
    case CRAY__TEV_BLOCK:
      open_ev(&o, "X", e->tid, e->t0, NULL, e->ptr ? e->ptr : "wait");
      us(f, "dur", dur_of(e));
      fputs(",\"cat\":\"wait\",\"args\":{}}", f);
      break;
    case CRAY__TEV_SPILL:
    case CRAY__TEV_RESTORE:
      open_ev(&o, "X", e->tid, e->t0, NULL, e->type == CRAY__TEV_SPILL ? "spill write" : "restore");
      us(f, "dur", dur_of(e));
      fprintf(f, ",\"cat\":\"spill\",\"args\":{\"bytes\":%" PRIu64, e->bytes);
      if (e->type == CRAY__TEV_SPILL) fprintf(f, ",\"objects\":%d}}", e->aux);
      else fprintf(f, ",\"object\":\"%s\"}}", h);
      break;
    }
  }
  fprintf(f, "\n],\"metadata\":{\"dropped_events\":%" PRIu64 ",\"ring_events\":%" PRIu64 "}}\n", dropped,
          cray__trace_ring_events());
  cray__free(t.v);
  return ferror(f) ? CRAY_ESYS : 0;
}
