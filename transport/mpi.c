/*
 * mpi.c: the cluster's transport over MPI (runtime/transport.h), built apart from the
 * runtime as cray_mpi.so so that only processes started under an MPI launcher load MPI.
 *
 * The communication thread calls every function here, init included, so MPI runs with
 * MPI_THREAD_FUNNELED. Errors return instead of aborting (MPI_ERRORS_RETURN): the
 * cluster then ends the job with a message naming the rank and what failed.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "../runtime/transport.h"

static char last_error[MPI_MAX_ERROR_STRING + 64];

static int failed(int rc, const char *what) {
  if (rc == MPI_SUCCESS) return 0;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "code %d", rc);
  snprintf(last_error, sizeof last_error, "%s: %s", what, text);
  return -1;
}

static int t_init(int *rank, int *size, char *err, size_t errlen) {
  int provided = 0;
  if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
    snprintf(err, errlen, "MPI_Init_thread failed");
    return -1;
  }
  if (provided < MPI_THREAD_FUNNELED) {
    snprintf(err, errlen, "MPI offers no MPI_THREAD_FUNNELED (only level %d)", provided);
    return -1;
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  if (failed(MPI_Comm_rank(MPI_COMM_WORLD, rank), "MPI_Comm_rank") ||
      failed(MPI_Comm_size(MPI_COMM_WORLD, size), "MPI_Comm_size")) {
    snprintf(err, errlen, "%s", last_error);
    return -1;
  }
  return 0;
}

static int t_bcast(void *buf, size_t len, int root) {
  return failed(MPI_Bcast(buf, (int)len, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
}

static int t_barrier(void) { return failed(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }

static int t_isend(int dest, int tag, const void *buf, size_t len, void **req) {
  MPI_Request *r = malloc(sizeof *r);
  if (!r) return failed(MPI_ERR_NO_MEM, "MPI_Isend");
  if (failed(MPI_Isend(buf, (int)len, MPI_BYTE, dest, tag, MPI_COMM_WORLD, r), "MPI_Isend")) {
    free(r);
    return -1;
  }
  *req = r;
  return 0;
}

static int t_test(void *req) {
  int done = 0;
  if (failed(MPI_Test(req, &done, MPI_STATUS_IGNORE), "MPI_Test")) return -1;
  if (done) free(req);
  return done;
}

static int t_probe(int source, int tag, int *out_source, int *out_tag, size_t *len) {
  int flag = 0, count = 0;
  MPI_Status st;
  if (failed(MPI_Iprobe(source < 0 ? MPI_ANY_SOURCE : source, tag < 0 ? MPI_ANY_TAG : tag,
                        MPI_COMM_WORLD, &flag, &st),
             "MPI_Iprobe"))
    return -1;
  if (!flag) return 0;
  if (failed(MPI_Get_count(&st, MPI_BYTE, &count), "MPI_Get_count")) return -1;
  *out_source = st.MPI_SOURCE;
  *out_tag = st.MPI_TAG;
  *len = (size_t)count;
  return 1;
}

static int t_recv(int source, int tag, void *buf, size_t len) {
  return failed(MPI_Recv(buf, (int)len, MPI_BYTE, source, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
                "MPI_Recv");
}

static const char *t_error(void) { return last_error; }

static void t_abort(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  exit(code);
}

static void t_finalize(void) { MPI_Finalize(); }

__attribute__((visibility("default"))) const cray_transport cray_transport_mpi = {
    CRAY_TRANSPORT_VERSION, "mpi", t_init,  t_bcast, t_barrier,  t_isend,
    t_test,                 t_probe, t_recv, t_error, t_abort, t_finalize,
};
