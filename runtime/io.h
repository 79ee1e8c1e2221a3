/*
 * io.h: non-blocking I/O for tasks, actors and other threads, on the timer service's libuv
 * loop (runtime/timer.h).
 *
 * Two pieces:
 *
 * Operations (cray__io_op). Something to wait for: a socket becoming readable or writable,
 * a file system call on libuv's thread pool, a name lookup, a subprocess. Whoever needs
 * one makes it (a kind's module embeds cray__io_op first in a larger struct), submits it,
 * and waits: a task has the loop wake it through its worker's inbox (the scheduler's
 * usual resumption, so it then looks again, as after any wait), any other thread blocks
 * on the op's condition variable. The loop thread starts the op and, when it is over,
 * completes it exactly once. An op is reference-counted: its submitter holds one
 * reference and the loop one from submission to completion.
 *
 * Handles (cray__io_handle). A socket the runtime owns, named by a 53-bit id that Lua
 * values carry, so a handle can be handed to another task or actor like a ref. Workers do
 * the socket's system calls themselves on the non-blocking descriptor. Every socket sits
 * in the service's epoll set, registered one-shot: a waiter arms it (epoll_ctl, from its
 * own thread) for the direction it waits for, and the loop, which watches the epoll set
 * with one uv_poll, finishes the waiter's op when the socket is ready. So a wait costs
 * one system call on the waiter's side and no request to the loop. A handle belongs to one owner at a time (an
 * actor, a task that is no actor call, or no one: another thread); each of its two
 * directions (reading or accepting; writing or connecting) has at most one user at a time,
 * and another owner may use it only while both are idle. An actor that uses a handle takes
 * it over (an acceptor hands each client's connection to an actor of its own); a task that
 * is no actor call, or another thread, only borrows it. A handle is
 * closed by cray__io_close, when its owner ends (cray__io_owner_end), and at shutdown;
 * its descriptor is closed once the last reference to it is dropped.
 *
 * Locks: `mu` of the service guards the handle table, every handle's owner, users and
 * armed watchers, and the epoll registrations (epoll_ctl runs under it, so arming and the
 * loop's taking of the ready watchers are ordered); a worker's lock may be taken under it
 * (to wake a task), never the other way round. An op's `mu` guards its done flag for
 * thread waiters.
 */
#ifndef CRAY_IO_H
#define CRAY_IO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "task.h"
#include "timer.h"

typedef struct cray__io cray__io;
typedef struct cray__io_op cray__io_op;
typedef struct cray__io_handle cray__io_handle;

/* Runs on the loop thread once the op is submitted; it must eventually call
 * cray__io_complete (perhaps from a libuv callback). */
typedef void (*cray__io_start_fn)(cray__io *io, uv_loop_t *loop, cray__io_op *op);
/* Frees what the op's kind holds beside the op, when its last reference goes. */
typedef void (*cray__io_free_fn)(cray__io_op *op);
/* Stops an op at shutdown, on the loop thread: it must still complete (soon). */
typedef void (*cray__io_abort_fn)(cray__io_op *op);

struct cray__io_op {
  cray__io *io;
  cray__io_start_fn start;
  cray__io_free_fn free_fn;
  cray__io_abort_fn abort;
  _Atomic int rc;
  _Atomic int done;        /* completed; `result` may be read (acquire) */
  int result;              /* 0 or a negative libuv error */
  cray__task *task;        /* the waiting task (held), or NULL: a thread waits */
  pthread_mutex_t mu;      /* for a thread waiter */
  pthread_cond_t cv;
  cray__io_op *next;       /* the request queue */
  cray__io_op *gone_next;  /* cray__io_user_end's list */
  cray__io_op *prev_live, *next_live; /* ops started and not completed, loop thread */
};

struct cray__sched;

/* The I/O service on the timers' loop; wakes tasks of s. */
int cray__io_start(cray__io **out, cray__timers *timers, struct cray__sched *s,
                   cray__store *store);
/* The runtime stops: wakes every task waiting in I/O (they fail as cancelled). */
void cray__io_flush(cray__io *io);
/* After the workers stopped: closes every handle, aborts every op, forgets its waiters. */
void cray__io_stop(cray__io *io);
/* Ops submitted and not completed: waits that the world outside may end. */
int cray__io_pending(cray__io *io);

/* A new op of `size` bytes (at least sizeof(cray__io_op)), zeroed, with the caller's
 * reference. NULL when memory is short. */
cray__io_op *cray__io_op_new(cray__io *io, size_t size, cray__io_start_fn start,
                             cray__io_free_fn free_fn, cray__io_abort_fn abort);
void cray__io_op_release(cray__io_op *op);
/* Hands op to the loop: task t is woken when it completes (t NULL: a thread will wait
 * with cray__io_op_wait). */
void cray__io_submit(cray__io_op *op, cray__task *t);
/* On the loop thread: op is over with `result`; wakes its waiter, drops the loop's
 * reference. */
void cray__io_complete(cray__io_op *op, int result);
static inline int cray__io_op_done(cray__io_op *op) {
  return atomic_load_explicit(&op->done, memory_order_acquire); /* pairs with complete */
}
/* For a thread that is not a worker: waits until op completes (returns 1) or the
 * monotonic clock reaches deadline (< 0: none; returns 0). */
int cray__io_op_wait(cray__io_op *op, double deadline);

/* ---- handles ---- */

enum { CRAY__IO_LISTENER = 1, CRAY__IO_CONN };
enum { CRAY__IO_IN, CRAY__IO_OUT }; /* the two directions */

struct cray__io_handle {
  cray__io *io;
  uint64_t id;
  int kind;
  int fd;
  int rc;                   /* io->mu: the table holds no reference */
  _Atomic int closed;
  cray__io_handle *hnext;   /* hash chain, io->mu */
  cray__io_handle *gnext;   /* cray__io_owner_end's list */
  void *owner;               /* under io->mu */
  void *user[2];             /* the task (or thread token) using each direction, io->mu */
  cray__io_op *wait[2];      /* the user's poll op while it waits, held by the user */
  cray__io_op *watch[2];     /* poll ops armed in the epoll set, io->mu */
  /* the user of CRAY__IO_IN only */
  char *buf;                 /* bytes read and not yet handed out: buf[off..len) */
  size_t off, len, cap;
  int eof;
  /* the user of CRAY__IO_OUT only */
  size_t written;            /* of the write in progress */
};

/* A handle of `kind` on fd (taken over: closed with the handle), owned by `owner`, in the
 * table with its id, open; the caller gets a reference besides the one being open holds
 * (which cray__io_close drops). NULL when memory is short (fd is closed then). */
cray__io_handle *cray__io_handle_new(cray__io *io, int kind, int fd, void *owner);
enum { CRAY__IO_LOOK = -1 }; /* a direction for cray__io_use that only looks the handle up */
/* Looks id up and starts using direction `dir` of it as `user` on behalf of `owner`, who
 * takes the handle over when `adopt` is set (else it borrows it): with a reference taken, or NULL with *why saying what is wrong ("closed", "busy": another
 * user has that direction, "owned": another owner is using the other direction, "kind":
 * not of that kind). A user already on that direction (resuming after a wait) passes. */
cray__io_handle *cray__io_use(cray__io *io, uint64_t id, int kind, int dir, void *owner,
                              int adopt, void *user, const char **why);
/* Stops using dir (the wait op, if any, released) and drops the reference. */
void cray__io_unuse(cray__io_handle *h, int dir);
void cray__io_handle_release(cray__io_handle *h);
/* Closes the handle (once; later closes are no-ops): off the table, waiters woken,
 * descriptor closed when the last reference goes. 0, or CRAY_EINVAL when id is no open
 * handle of `kind`. */
int cray__io_close(cray__io *io, uint64_t id, int kind);
/* `owner` ended: its handles close, and directions it used are free. */
void cray__io_owner_end(cray__io *io, void *owner);
/* User `user` (a task) ended: the directions it used are free (its wait ops released). */
void cray__io_user_end(cray__io *io, void *user);
/* An op that completes when h's descriptor is ready for direction dir (result 0, also
 * for an error the next system call will report), or when h closes (UV_ECANCELED). NULL
 * when memory is short. It is armed with cray__io_watch, not submitted. */
cray__io_op *cray__io_poll_op(cray__io_handle *h, int dir);
/* Arms a poll op as cray__io_submit hands an op over (t NULL: a thread will wait), in the
 * calling thread: no request goes through the loop. */
void cray__io_watch(cray__io_op *op, cray__task *t);

#endif
