/*
 * transport.h: what the cluster (cluster.c) needs from a message transport, and nothing
 * more. The MPI transport (transport/mpi.c) is built as its own shared object,
 * cray_mpi.so, which links MPI; the runtime does not. crayrun loads it with dlopen only
 * when the process was started by an MPI launcher or given --cluster mpi, and finds
 * the table below under the symbol CRAY_TRANSPORT_SYMBOL.
 *
 * Every function is called on one thread, the cluster's communication thread, which
 * also calls init (so MPI_THREAD_FUNNELED suffices). Sends are non-blocking and leave
 * the buffer to the transport until test says they are done. Messages between one pair
 * of processes arrive in the order they were sent, whatever their tag.
 */
#ifndef CRAY_TRANSPORT_H
#define CRAY_TRANSPORT_H

#include <stddef.h>

#define CRAY_TRANSPORT_SYMBOL "cray_transport_mpi"
#define CRAY_TRANSPORT_VERSION 1

typedef struct cray_transport {
  int version; /* CRAY_TRANSPORT_VERSION */
  const char *name;
  /* Joins the job: this process's rank and the number of ranks. 0, or -1 with a reason
   * in err. */
  int (*init)(int *rank, int *size, char *err, size_t errlen);
  /* Copies len bytes from root's buf to every rank's buf (a collective: all call it). */
  int (*bcast)(void *buf, size_t len, int root);
  /* Returns once every rank has called it. 0 or -1. */
  int (*barrier)(void);
  /* Starts sending buf[0..len) to dest under tag; *req is what test takes. 0 or -1. */
  int (*isend)(int dest, int tag, const void *buf, size_t len, void **req);
  /* 1 when the send is done (req is freed), 0 while it is not, -1 on a transport error. */
  int (*test)(void *req);
  /* Looks for a message from source (-1: any) under tag (-1: any) without taking it:
   * 1 with its source, tag and length set, 0 when there is none, -1 on error. */
  int (*probe)(int source, int tag, int *out_source, int *out_tag, size_t *len);
  /* Receives the message probe just saw into buf (len bytes). 0 or -1. */
  int (*recv)(int source, int tag, void *buf, size_t len);
  /* The text of the last error, for messages. */
  const char *(*error)(void);
  /* Ends this process and every other rank with status code. Does not return. */
  void (*abort)(int code);
  /* Leaves the job; nothing may be called afterwards. */
  void (*finalize)(void);
} cray_transport;

#endif
