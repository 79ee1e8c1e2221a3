/*
 * io_echo.c: the TCP echo of bench/io_echo.lua in plain C on libuv, in the same
 * `make bench`, so cray's figures read as a ratio of it (docs/performance.md).
 *
 *   io_tcp_echo_c_roundtrips_per_second   64-byte messages
 *   io_tcp_echo_c_gb_per_second           1 MiB messages, counted once per round trip
 *
 * Like the two actors, server and client run on two threads, each with a loop of its own,
 * over one loopback connection with TCP_NODELAY. The server writes back each chunk it
 * reads; the client writes a message, reads until the whole of it came back, and goes
 * again. Each metric runs its fixed workload once to warm up, then CRAY_BENCH_RUNS times
 * (default 5, quick 3); the median goes to stdout as "<metric> <value> <unit>", every run
 * to stderr. CRAY_BENCH_QUICK=1 makes the workloads tiny, CRAY_BENCH_FILTER picks metrics
 * by substring.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "bench.h"

static void die(const char *what, int rc) {
  fprintf(stderr, "io_echo: %s: %s\n", what, uv_strerror(rc));
  exit(1);
}

/* ---- the server: echoes every chunk ---- */

typedef struct server {
  uv_loop_t loop;
  uv_tcp_t listener, conn;
  int port;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int ready;
} server;

typedef struct echo_write {
  uv_write_t req;
  char *data;
} echo_write;

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)h;
  *buf = uv_buf_init(malloc(hint), (unsigned)hint);
}

static void on_echoed(uv_write_t *req, int status) {
  (void)status;
  echo_write *w = (echo_write *)req;
  free(w->data);
  free(w);
}

static void on_server_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  if (n <= 0) {
    free(buf->base);
    if (n < 0) uv_close((uv_handle_t *)s, NULL);
    return;
  }
  echo_write *w = malloc(sizeof *w);
  w->data = buf->base;
  uv_buf_t b = uv_buf_init(buf->base, (unsigned)n);
  uv_write(&w->req, s, &b, 1, on_echoed);
}

static void on_connection(uv_stream_t *l, int status) {
  server *sv = l->data;
  if (status < 0) die("accept", status);
  uv_tcp_init(&sv->loop, &sv->conn);
  uv_accept(l, (uv_stream_t *)&sv->conn);
  uv_tcp_nodelay(&sv->conn, 1);
  uv_read_start((uv_stream_t *)&sv->conn, on_alloc, on_server_read);
  uv_close((uv_handle_t *)l, NULL);
}

static void *server_main(void *arg) {
  server *sv = arg;
  uv_loop_init(&sv->loop);
  uv_tcp_init(&sv->loop, &sv->listener);
  sv->listener.data = sv;
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  int rc = uv_tcp_bind(&sv->listener, (const struct sockaddr *)&addr, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&sv->listener, 16, on_connection);
  if (rc != 0) die("listen", rc);
  struct sockaddr_in bound;
  int len = sizeof bound;
  uv_tcp_getsockname(&sv->listener, (struct sockaddr *)&bound, &len);
  pthread_mutex_lock(&sv->mu);
  sv->port = ntohs(bound.sin_port);
  sv->ready = 1;
  pthread_cond_signal(&sv->cv);
  pthread_mutex_unlock(&sv->mu);
  uv_run(&sv->loop, UV_RUN_DEFAULT);
  uv_loop_close(&sv->loop);
  return NULL;
}

/* ---- the client: n round trips of size bytes ---- */

typedef struct client {
  uv_loop_t loop;
  uv_tcp_t conn;
  uv_connect_t connect;
  char *msg, *buf;
  size_t size, got;
  long left;
} client;

static void send_next(client *c);

static void on_client_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  client *c = h->data;
  *buf = uv_buf_init(c->buf + c->got, (unsigned)(c->size - c->got));
}

static void on_client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  (void)buf;
  client *c = s->data;
  if (n < 0) die("client read", (int)n);
  c->got += (size_t)n;
  if (c->got < c->size) return;
  uv_read_stop(s);
  if (--c->left > 0) send_next(c);
  else uv_stop(&c->loop);
}

static void on_sent(uv_write_t *req, int status) {
  if (status < 0) die("client write", status);
  free(req);
}

/* A request per write: the echo may come back before the last write's callback ran. */
static void send_next(client *c) {
  c->got = 0;
  uv_buf_t b = uv_buf_init(c->msg, (unsigned)c->size);
  uv_write(malloc(sizeof(uv_write_t)), (uv_stream_t *)&c->conn, &b, 1, on_sent);
  uv_read_start((uv_stream_t *)&c->conn, on_client_alloc, on_client_read);
}

static void on_connected(uv_connect_t *req, int status) {
  if (status < 0) die("connect", status);
  client *c = req->data;
  uv_stop(&c->loop);
}

/* Runs one metric: warm-up, runs, median printed. figure(seconds) gives the value. */
static void metric(const char *name, const char *unit, const char *fmt, int port, size_t size,
                   long n, int runs, double (*figure)(double secs, long n, size_t size)) {
  client c = {.size = size};
  uv_loop_init(&c.loop);
  uv_tcp_init(&c.loop, &c.conn);
  uv_tcp_nodelay(&c.conn, 1);
  c.conn.data = &c;
  c.connect.data = &c;
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", port, &addr);
  uv_tcp_connect(&c.connect, &c.conn, (const struct sockaddr *)&addr, on_connected);
  uv_run(&c.loop, UV_RUN_DEFAULT);
  c.msg = malloc(size);
  c.buf = malloc(size);
  memset(c.msg, 'x', size);
  double values[BENCH_MAX_RUNS];
  fprintf(stderr, "  %-45s", name);
  for (int r = -1; r < runs; r++) {
    c.left = n;
    double t0 = bench_now();
    send_next(&c);
    uv_run(&c.loop, UV_RUN_DEFAULT);
    double v = figure(bench_now() - t0, n, size);
    if (r >= 0) values[r] = v;
    fprintf(stderr, " %.4g", v);
  }
  double med = bench_median(values, runs);
  fprintf(stderr, " -> %.4g %s\n", med, unit);
  bench_report(name, unit, fmt, med);
  uv_close((uv_handle_t *)&c.conn, NULL);
  uv_run(&c.loop, UV_RUN_DEFAULT);
  uv_loop_close(&c.loop);
  free(c.msg);
  free(c.buf);
}

static double per_second(double secs, long n, size_t size) {
  (void)size;
  return (double)n / secs;
}

static double gb_per_second(double secs, long n, size_t size) {
  return (double)n * (double)size / secs / 1e9;
}

/* Serves one connection on a thread of its own for the metric, then joins it. */
static void with_server(const char *name, const char *unit, const char *fmt, size_t size,
                        long n, int runs, double (*figure)(double, long, size_t)) {
  if (!strstr(name, bench_settings_read().filter)) return;
  server sv = {0};
  pthread_mutex_init(&sv.mu, NULL);
  pthread_cond_init(&sv.cv, NULL);
  pthread_t t;
  pthread_create(&t, NULL, server_main, &sv);
  pthread_mutex_lock(&sv.mu);
  while (!sv.ready) pthread_cond_wait(&sv.cv, &sv.mu);
  pthread_mutex_unlock(&sv.mu);
  metric(name, unit, fmt, sv.port, size, n, runs, figure);
  pthread_join(t, NULL); /* the server's loop ends when the client closes */
  pthread_mutex_destroy(&sv.mu);
  pthread_cond_destroy(&sv.cv);
}

int main(void) {
  bench_settings set = bench_settings_read();
  int quick = set.quick, runs = set.runs;
  with_server("io_tcp_echo_c_roundtrips_per_second", "per_second", "%.0f", 64,
              quick ? 200 : 20000, runs, per_second);
  with_server("io_tcp_echo_c_gb_per_second", "gb_per_second", "%.3f", 1024 * 1024,
              quick ? 4 : 400, runs, gb_per_second);
  return 0;
}
