/*
 * io_tcp.c: see io_tcp.h.
 *
 * Sockets are made non-blocking and close-on-exec; connections get TCP_NODELAY, as small
 * request-reply messages are the common case and a writer that waits for the kernel
 * buffer batches large ones anyway. Writes use MSG_NOSIGNAL: a peer gone is an error, not
 * SIGPIPE. Name look-ups run on libuv's thread pool through the loop (uv_getaddrinfo).
 */
#include "io_tcp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"

#define READ_CHUNK 65536

static int err(void) { return -errno; } /* libuv's codes are negated errno on Unix */

int cray__tcp_numeric(const char *host, int port, cray__tcp_addr *out) {
  memset(out, 0, sizeof *out);
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&out->ss) == 0) return 0;
  if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)&out->ss) == 0) return 0;
  return UV_EINVAL;
}

/* ---- resolving ---- */

typedef struct resolve_op {
  cray__io_op op;
  uv_getaddrinfo_t req;
  char *host;
  int port;
  cray__tcp_addr addr;
} resolve_op;

static void resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  resolve_op *r = req->data;
  if (status == 0) {
    if (res && res->ai_addrlen <= sizeof r->addr.ss) {
      memcpy(&r->addr.ss, res->ai_addr, res->ai_addrlen);
      ((struct sockaddr_in *)&r->addr.ss)->sin_port = htons((uint16_t)r->port);
    } else {
      status = UV_EAI_NONAME;
    }
  }
  uv_freeaddrinfo(res);
  cray__io_complete(&r->op, status);
}

static void resolve_start(cray__io *io, uv_loop_t *loop, cray__io_op *op) {
  (void)io;
  resolve_op *r = (resolve_op *)op;
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  r->req.data = r;
  int rc = uv_getaddrinfo(loop, &r->req, resolved, r->host, NULL, &hints);
  if (rc != 0) cray__io_complete(op, rc);
}

static void resolve_abort(cray__io_op *op) { uv_cancel((uv_req_t *)&((resolve_op *)op)->req); }

static void resolve_free(cray__io_op *op) { cray__free(((resolve_op *)op)->host); }

cray__io_op *cray__tcp_resolve_op(cray__io *io, const char *host, int port) {
  resolve_op *r = (resolve_op *)cray__io_op_new(io, sizeof *r, resolve_start, resolve_free,
                                                resolve_abort);
  if (!r) return NULL;
  r->port = port;
  if (!(r->host = cray__strdup(host))) {
    cray__io_op_release(&r->op);
    return NULL;
  }
  return &r->op;
}

void cray__tcp_resolved(cray__io_op *op, cray__tcp_addr *out) { *out = ((resolve_op *)op)->addr; }

/* ---- sockets ---- */

static socklen_t addr_len(const cray__tcp_addr *a) {
  return a->ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static int new_socket(int family) {
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  return fd < 0 ? err() : fd;
}

static int wrap(cray__io *io, int kind, int fd, void *owner, cray__io_handle **out) {
  if (!(*out = cray__io_handle_new(io, kind, fd, owner))) return UV_ENOMEM;
  return 0;
}

int cray__tcp_listen(cray__io *io, const cray__tcp_addr *addr, int backlog, void *owner,
                     cray__io_handle **out) {
  int fd = new_socket(addr->ss.ss_family);
  if (fd < 0) return fd;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (const struct sockaddr *)&addr->ss, addr_len(addr)) != 0 ||
      listen(fd, backlog > 0 ? backlog : SOMAXCONN) != 0) {
    int rc = err();
    close(fd);
    return rc;
  }
  return wrap(io, CRAY__IO_LISTENER, fd, owner, out);
}

int cray__tcp_port(cray__io_handle *h) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(h->fd, (struct sockaddr *)&ss, &len) != 0) return err();
  return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                        : ((struct sockaddr_in *)&ss)->sin_port);
}

static void nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int cray__tcp_accept(cray__io_handle *h, void *owner, cray__io_handle **out) {
  int fd;
  do fd = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  while (fd < 0 && (errno == EINTR || errno == ECONNABORTED));
  if (fd < 0) return errno == EWOULDBLOCK ? UV_EAGAIN : err();
  nodelay(fd);
  return wrap(h->io, CRAY__IO_CONN, fd, owner, out);
}

int cray__tcp_connect(cray__io *io, const cray__tcp_addr *addr, void *owner,
                      cray__io_handle **out) {
  int fd = new_socket(addr->ss.ss_family);
  if (fd < 0) return fd;
  nodelay(fd);
  int rc = connect(fd, (const struct sockaddr *)&addr->ss, addr_len(addr)) == 0 ? 0 : err();
  if (rc != 0 && rc != -EINPROGRESS) {
    close(fd);
    return rc;
  }
  int wrapped = wrap(io, CRAY__IO_CONN, fd, owner, out);
  return wrapped ? wrapped : rc ? UV_EAGAIN : 0;
}

int cray__tcp_connected(cray__io_handle *h) {
  int e = 0;
  socklen_t len = sizeof e;
  if (getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0) return err();
  return -e;
}

/* ---- reading and writing ---- */

int cray__tcp_fill(cray__io_handle *h, size_t want, int *eof) {
  *eof = h->eof;
  for (;;) {
    size_t have = h->len - h->off;
    if (have && (want == 0 || have >= want)) return have > INT32_MAX ? INT32_MAX : (int)have;
    if (h->eof) return (int)have;
    if (h->off && h->off == h->len) h->off = h->len = 0;
    size_t need = want > have ? want - have : READ_CHUNK;
    if (need < READ_CHUNK) need = READ_CHUNK;
    if (h->cap - h->len < need) {
      if (h->off) { /* slide what is left to the front first */
        memmove(h->buf, h->buf + h->off, have);
        h->off = 0;
        h->len = have;
      }
      if (h->cap - h->len < need) {
        char *b = cray__realloc(h->buf, h->len + need);
        if (!b) return UV_ENOMEM;
        h->buf = b;
        h->cap = h->len + need;
      }
    }
    ssize_t n;
    do n = recv(h->fd, h->buf + h->len, h->cap - h->len, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) return errno == EWOULDBLOCK ? UV_EAGAIN : err();
    if (n == 0) *eof = h->eof = 1;
    h->len += (size_t)n;
  }
}

const char *cray__tcp_take(cray__io_handle *h, size_t n) {
  const char *p = h->buf + h->off;
  h->off += n;
  return p;
}

int cray__tcp_write(cray__io_handle *h, const char *data, size_t len) {
  while (h->written < len) {
    ssize_t n = send(h->fd, data + h->written, len - h->written, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno == EWOULDBLOCK ? UV_EAGAIN : err();
    h->written += (size_t)n;
  }
  return 0;
}

int cray__tcp_peer(cray__io_handle *h, char *buf, size_t size) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getpeername(h->fd, (struct sockaddr *)&ss, &len) != 0) return err();
  char ip[INET6_ADDRSTRLEN];
  if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    uv_ip6_name(a, ip, sizeof ip);
    snprintf(buf, size, "[%s]:%d", ip, ntohs(a->sin6_port));
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    uv_ip4_name(a, ip, sizeof ip);
    snprintf(buf, size, "%s:%d", ip, ntohs(a->sin_port));
  }
  return 0;
}
