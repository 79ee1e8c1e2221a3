/*
 * cluster.h: one runtime per rank, joined into one job by a transport (DESIGN.md §9).
 *
 * A cluster is process-wide: crayrun starts it, with the transport it loaded, before the
 * runtime opens; cray_open attaches the runtime to it and cray_close detaches it. Rank 0
 * runs the script; the other ranks serve (cray__cluster_serve) until rank 0 ends the job
 * (cray__cluster_end), and every rank exits with rank 0's status.
 *
 * What crosses ranks carries ids, never pointers: an id's high half names the job and
 * the rank that made it (cray__id_owner), so any rank knows whom to ask about any ref.
 * A task sent to another rank (cray__cluster_submit) stays on its submitter as a shadow
 * holding its function, arguments and returns; the rank that runs it sends each return's
 * value back to the submitter, which owns them. A ref to another rank's object that
 * arrives inside a value, or as an argument, becomes a local pending entry (a proxy) and
 * its value is pulled from the owner when something here first waits on it.
 *
 * Threads: one communication thread owns the transport. Other threads hand it work
 * through a lock-free queue (cluster.c) and wake it when it sleeps; store wake-ups that
 * concern another rank only push to that queue.
 */
#ifndef CRAY_CLUSTER_H
#define CRAY_CLUSTER_H

#include <stdint.h>

#include "cray.h"
#include "task.h"
#include "transport.h"
#include "wire.h"

typedef struct cray__cluster cray__cluster;
struct cray__sched;
struct cray__actor_spec;
struct cray__trace_rank;

/* Starts the communication thread, which joins the job through tp. 0, or -1 with the
 * reason in err. The cluster becomes the process's (cray__cluster_process). */
int cray__cluster_start(cray__cluster **out, const cray_transport *tp, char *err, size_t errlen);
/* The process's cluster, or NULL when it runs alone. */
cray__cluster *cray__cluster_process(void);

int cray__cluster_rank(const cray__cluster *c);
int cray__cluster_size(const cray__cluster *c);
/* The high half of the ids made on this rank: the job's nonce and the rank. */
uint64_t cray__cluster_id_hi(const cray__cluster *c);

/* What a rank told the others when the job started (cray__cluster_ready). */
typedef struct cray__cluster_node {
  int workers;
  int pid;
  char *host;
  int nresources;
  char **resource_names;
  double *resource_counts;
} cray__cluster_node;

/* Rank k's (0 <= k < size), fixed from cray__cluster_ready on. */
const cray__cluster_node *cray__cluster_node_of(const cray__cluster *c, int k);
/* Node n's units of resource name, or -1 when it has none of that name. */
double cray__cluster_node_resource(const cray__cluster_node *n, const char *name);

/* What a rank reports of itself now (cray__cluster_reports): counts (CRAY__REPORT_*) and
 * the units of each of its resources not held, in the order of its cray__cluster_node. */
enum {
  CRAY__REPORT_SUBMITTED, CRAY__REPORT_RUNNING, CRAY__REPORT_FINISHED, CRAY__REPORT_FAILED,
  CRAY__REPORT_ACTORS, CRAY__REPORT_OBJECTS, CRAY__REPORT_BYTES, CRAY__REPORT_BUDGET,
  CRAY__REPORT_SPILLED_OBJECTS, CRAY__REPORT_SPILLED_BYTES, CRAY__REPORT_RESTORED_OBJECTS,
  CRAY__REPORT_PUTS, CRAY__REPORT_FREES, CRAY__REPORT_PEAK_BYTES, CRAY__REPORT_N
};
typedef struct cray__cluster_report {
  uint64_t v[CRAY__REPORT_N];
  double *free; /* nresources of the rank's node */
} cray__cluster_report;

/* This rank's counts now, from its runtime and scheduler (s may be NULL: no tasks yet). */
void cray__cluster_counts(cray_runtime *rt, struct cray__sched *s, uint64_t v[CRAY__REPORT_N]);

/* Asks every rank for its report and waits for all: out[k] is rank k's (size entries;
 * free them with cray__cluster_reports_free). 0, or -1 when this rank's runtime is
 * closing. Any thread but the communication thread. */
int cray__cluster_reports(cray__cluster *c, cray__cluster_report *out);
void cray__cluster_reports_free(cray__cluster *c, cray__cluster_report *out);

/* What a query asks of every rank: its report (above), or of its timeline recorder
 * (trace.h) to start, to stop, or to pack what it recorded. */
enum {
  CRAY__QUERY_REPORT, CRAY__QUERY_TRACE_START, CRAY__QUERY_TRACE_STOP, CRAY__QUERY_TRACE_READ
};
/* Tells every rank's recorder, this one's too, to start or stop (op), and waits until
 * each did; with CRAY__QUERY_TRACE_READ, ranks[k] gets rank k's events (size entries;
 * cray__trace_write_job writes them; the caller frees each one's ev). 0, or -1 when this
 * rank's runtime is closing. Any thread but the communication thread. */
int cray__cluster_trace(cray__cluster *c, int op, struct cray__trace_rank *ranks);

/* cray_open and cray_close: the runtime whose store and scheduler serve other ranks. */
void cray__cluster_attach(cray__cluster *c, cray_runtime *rt);
void cray__cluster_detach(cray__cluster *c);

/* Tasks from other ranks run on s from now on. Returns once every rank is this far, so
 * no rank sends work to one that cannot take it yet. */
void cray__cluster_ready(cray__cluster *c, struct cray__sched *s);

/* Takes over the caller's reference to t (built, not submitted; its return entries are
 * pending and t holds them, in store s) and runs it on rank `node`, once its arguments are
 * ready. */
void cray__cluster_submit(cray__cluster *c, cray__store *s, cray__task *t, int node);

/* cray.cancel of e under a cluster: when e is a pending return of a task this rank
 * submitted, asks the communication thread to cancel it wherever it runs (a task sent to
 * another rank fails there as it would here) and returns 1; else returns 0. */
int cray__cluster_cancel(cray__cluster *c, cray__entry *e);

/* Actors on other ranks. An actor's entry id names the rank it lives on; elsewhere its
 * entry is a proxy (flagged CRAY__ENTRY_REMOTE_ACTOR), and a call through one is a task
 * whose fn is the proxy and whose method is set, given to cray__cluster_submit for the
 * actor's rank. */

/* Makes an actor of class cls on rank `node` (init built as for cray__actor_create, its
 * reference taken over; its id and name are made here) and waits until that rank made
 * it. Returns its proxy here, with one reference, or NULL when the runtime shut down or
 * that rank could not make it. */
cray__entry *cray__cluster_actor_create(cray__cluster *c, cray__store *s,
                                        const struct cray__actor_spec *spec, cray__entry *cls,
                                        cray__task *init, int node);
/* cray.kill of another rank's actor, through its proxy: waits for its rank's answer, and
 * returns 1 when the actor was alive (0 too when the runtime shut down meanwhile). */
int cray__cluster_actor_kill(cray__cluster *c, cray__entry *actor, int restart);
/* cray.monitor of another rank's actor: a new pending entry here (one reference for the
 * caller) that resolves as cray__actor_monitor's does there. NULL when memory is short. */
cray__entry *cray__cluster_actor_monitor(cray__cluster *c, cray_runtime *rt, cray__entry *actor,
                                         int restarts);

/* The job's actor names, which rank 0 keeps (cluster.c): `op` is one of CRAY__NAME_CLAIM
 * (take name before making its actor: MINE, or TAKEN with *out the ref of the handle that
 * has it, or BUSY while another rank is making one), CRAY__NAME_SET (name's actor is
 * made: ref holds its handle as a value; actor is its id), CRAY__NAME_LOOKUP (FOUND with
 * *out, or NONE), CRAY__NAME_DROP (the claim of a name whose actor could not be made;
 * actor is zero). Waits for rank 0's answer; *out has one reference for the caller.
 * CRAY__NAME_CLOSED when the runtime shut down. */
enum { CRAY__NAME_CLAIM, CRAY__NAME_SET, CRAY__NAME_LOOKUP, CRAY__NAME_DROP, CRAY__NAME_LIST };
enum {
  CRAY__NAME_MINE, CRAY__NAME_TAKEN, CRAY__NAME_BUSY, CRAY__NAME_FOUND, CRAY__NAME_NONE,
  CRAY__NAME_DONE, CRAY__NAME_CLOSED,
};
int cray__cluster_name(cray__cluster *c, cray__store *s, int op, const char *name,
                       cray__entry *ref, const cray_id *actor, cray__entry **out);
/* Appends every name of the job whose actor is alive to out (as rank 0 knows them), each
 * as the node its actor lives on (4 bytes, big-endian) and the name, NUL-ended. Returns 0,
 * or -1 when the runtime shut down. */
int cray__cluster_names(cray__cluster *c, cray__buf *out);
/* The actor `actor`, named name, died: its name leaves the directory. Does not wait. */
void cray__cluster_name_gone(cray__cluster *c, const char *name, const cray_id *actor);

/* Work in flight to or from other ranks: tasks sent and not answered, values asked for
 * and not come. The deadlock check treats a driver as waiting on progress while it is
 * above zero. */
uint64_t cray__cluster_inflight(const cray__cluster *c);

/* The process was told to stop (SIGTERM or SIGINT), as mpirun tells every rank when one
 * died: the communication thread looks for a rank on this host that is gone, and names it
 * with what was in flight to and from it before it ends the job. Any thread. */
void cray__cluster_signalled(cray__cluster *c);

/* On ranks other than 0: blocks until rank 0 ends the job and returns its status. */
int cray__cluster_serve(cray__cluster *c);

/* After the runtime closed: on rank 0, tells every rank to exit with status and waits
 * until they have closed theirs; elsewhere, tells rank 0 this rank is done. Then leaves
 * the job and frees c. */
void cray__cluster_end(cray__cluster *c, int status);

#endif
