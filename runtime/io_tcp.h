/*
 * io_tcp.h: TCP listeners and connections as io handles (runtime/io.h).
 *
 * The calls here never block: each tries its system call on the non-blocking socket and
 * says UV_EAGAIN when the caller must wait for the descriptor (cray__io_poll_op) and try
 * again. Only the handle's user of a direction calls the functions of that direction
 * (reading and accepting: CRAY__IO_IN; writing and finishing a connect: CRAY__IO_OUT).
 * Errors are negative libuv codes (uv_strerror names them).
 */
#ifndef CRAY_IO_TCP_H
#define CRAY_IO_TCP_H

#include <sys/socket.h>

#include "io.h"

typedef struct cray__tcp_addr {
  struct sockaddr_storage ss;
} cray__tcp_addr;

/* A numeric IPv4 or IPv6 host: 0 and *out set, or UV_EINVAL when host is a name. */
int cray__tcp_numeric(const char *host, int port, cray__tcp_addr *out);
/* An op that looks host up with uv_getaddrinfo (NULL when memory is short); when it
 * completed with 0, cray__tcp_resolved gives the first address. */
cray__io_op *cray__tcp_resolve_op(cray__io *io, const char *host, int port);
void cray__tcp_resolved(cray__io_op *op, cray__tcp_addr *out);

/* A listener on addr (backlog < 1: a default), owned by owner: *out holds a reference. */
int cray__tcp_listen(cray__io *io, const cray__tcp_addr *addr, int backlog, void *owner,
                     cray__io_handle **out);
/* The port a listener or connection is bound to locally, or a negative error. */
int cray__tcp_port(cray__io_handle *h);
/* A connection accepted from listener h, owned by owner (*out holds a reference). */
int cray__tcp_accept(cray__io_handle *h, void *owner, cray__io_handle **out);
/* A connection to addr, owned by owner, in *out (a reference) even when it returns
 * UV_EAGAIN: then the connect is under way, and the caller uses CRAY__IO_OUT of it to
 * wait for writability and calls cray__tcp_connected. */
int cray__tcp_connect(cray__io *io, const cray__tcp_addr *addr, void *owner,
                      cray__io_handle **out);
/* 0 when h's connect succeeded, else why it failed. */
int cray__tcp_connected(cray__io_handle *h);
/* Reads into h's buffer until it holds `want` bytes (0: any), then returns the bytes it
 * holds; 0 at the end of the stream (*eof then 1, with what is left still returned first),
 * UV_EAGAIN, or an error. cray__tcp_take hands n of them out: a pointer valid until the
 * next call on h's CRAY__IO_IN. */
int cray__tcp_fill(cray__io_handle *h, size_t want, int *eof);
const char *cray__tcp_take(cray__io_handle *h, size_t n);
/* Writes data[h->written..len) until it is all written (0), UV_EAGAIN, or an error. */
int cray__tcp_write(cray__io_handle *h, const char *data, size_t len);
/* The peer's address as "host:port" ("[v6]:port") in buf; 0 or an error. */
int cray__tcp_peer(cray__io_handle *h, char *buf, size_t size);

#endif
