/*
 * io_exec.c: see io_exec.h.
 *
 * Everything here but making and freeing the op runs on the loop thread. The op owns the
 * process handle, up to three pipes and a timer; it completes when every one of them is
 * closed, which happens once the child exited and both output pipes reached their end
 * (or failed). The input is written in one uv_write, and its pipe closed after it, so a
 * child that reads to the end of its input sees it.
 */
#include "io_exec.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

typedef struct outbuf {
  char *data;
  size_t len, cap;
} outbuf;

typedef struct exec_op {
  cray__io_op op;
  char **argv, **env, *cwd, *input;
  size_t input_len;
  double timeout;
  uv_process_t proc;
  uv_pipe_t in, out, err;
  uv_timer_t timer;
  uv_write_t write;
  outbuf bufs[2];
  int open;        /* handles not closed yet */
  int reading;     /* output pipes not at their end */
  int exited, status, timed_out, failed;
} exec_op;

/* ---- copies ---- */

static char **copy_list(const char *const *v) {
  size_t n = 0;
  while (v[n]) n++;
  char **c = cray__calloc(n + 1, sizeof *c);
  if (!c) return NULL;
  for (size_t i = 0; i < n; i++) {
    if (!(c[i] = cray__strdup(v[i]))) {
      while (i--) cray__free(c[i]);
      cray__free(c);
      return NULL;
    }
  }
  return c;
}

static void free_list(char **v) {
  if (!v) return;
  for (size_t i = 0; v[i]; i++) cray__free(v[i]);
  cray__free(v);
}

/* ---- the loop's side ---- */

static void on_closed(uv_handle_t *h) {
  exec_op *x = h->data;
  if (--x->open == 0) cray__io_complete(&x->op, x->failed);
}

static void close_one(uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, on_closed);
}

/* Closes everything once the child exited and its output ended. */
static void maybe_done(exec_op *x) {
  if (!x->exited || x->reading) return;
  close_one((uv_handle_t *)&x->proc);
  close_one((uv_handle_t *)&x->timer);
  if (x->input) close_one((uv_handle_t *)&x->in);
  close_one((uv_handle_t *)&x->out);
  close_one((uv_handle_t *)&x->err);
}

static void on_child_exit(uv_process_t *p, int64_t status, int signal) {
  exec_op *x = p->data;
  x->exited = 1;
  x->status = signal ? 128 + signal : (int)status;
  uv_timer_stop(&x->timer);
  maybe_done(x);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  exec_op *x = h->data;
  outbuf *b = &x->bufs[h == (uv_handle_t *)&x->err];
  if (hint < 65536) hint = 65536;
  if (b->cap - b->len < hint) {
    size_t n = b->cap ? b->cap * 2 : hint;
    while (n - b->len < hint) n *= 2;
    char *d = realloc(b->data, n);
    if (d) b->data = d, b->cap = n;
  }
  *buf = uv_buf_init(b->data + b->len, (unsigned)(b->cap - b->len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  (void)buf;
  exec_op *x = s->data;
  if (n > 0) x->bufs[s == (uv_stream_t *)&x->err].len += (size_t)n;
  if (n >= 0) return;
  uv_read_stop(s);
  x->reading--;
  maybe_done(x);
}

static void on_written(uv_write_t *w, int status) {
  (void)status; /* a child that does not read all its input is no error */
  exec_op *x = w->data;
  close_one((uv_handle_t *)&x->in);
}

static void on_timeout(uv_timer_t *t) {
  exec_op *x = t->data;
  x->timed_out = 1;
  uv_process_kill(&x->proc, SIGKILL);
}

static void exec_start(cray__io *io, uv_loop_t *loop, cray__io_op *op) {
  (void)io;
  exec_op *x = (exec_op *)op;
  uv_handle_t *hs[] = {(uv_handle_t *)&x->proc, (uv_handle_t *)&x->in, (uv_handle_t *)&x->out,
                       (uv_handle_t *)&x->err, (uv_handle_t *)&x->timer};
  for (size_t i = 0; i < sizeof hs / sizeof *hs; i++) hs[i]->data = x;
  x->write.data = x;
  if (x->input) uv_pipe_init(loop, &x->in, 0);
  uv_pipe_init(loop, &x->out, 0);
  uv_pipe_init(loop, &x->err, 0);
  uv_timer_init(loop, &x->timer);
  uv_stdio_container_t stdio[3] = {
      {.flags = x->input ? UV_CREATE_PIPE | UV_READABLE_PIPE : UV_IGNORE,
       .data.stream = (uv_stream_t *)&x->in},
      {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&x->out},
      {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&x->err},
  };
  uv_process_options_t o = {
      .exit_cb = on_child_exit,
      .file = x->argv[0],
      .args = x->argv,
      .env = x->env,
      .cwd = x->cwd,
      .stdio_count = 3,
      .stdio = stdio,
  };
  int rc = uv_spawn(loop, &x->proc, &o);
  x->open = x->input ? 5 : 4;
  if (rc != 0) {
    /* Nothing runs: the process handle (libuv wants it closed all the same), the pipes
     * and the timer close, then the op completes with rc. */
    x->failed = rc;
    uv_close((uv_handle_t *)&x->proc, on_closed);
    if (x->input) uv_close((uv_handle_t *)&x->in, on_closed);
    uv_close((uv_handle_t *)&x->out, on_closed);
    uv_close((uv_handle_t *)&x->err, on_closed);
    uv_close((uv_handle_t *)&x->timer, on_closed);
    return;
  }
  x->reading = 2;
  uv_read_start((uv_stream_t *)&x->out, on_alloc, on_read);
  uv_read_start((uv_stream_t *)&x->err, on_alloc, on_read);
  if (x->input) {
    uv_buf_t b = uv_buf_init(x->input, (unsigned)x->input_len);
    if (uv_write(&x->write, (uv_stream_t *)&x->in, &b, 1, on_written) != 0)
      close_one((uv_handle_t *)&x->in);
  }
  if (x->timeout >= 0) uv_timer_start(&x->timer, on_timeout, (uint64_t)(x->timeout * 1000 + 0.5), 0);
}

/* At shutdown: the child is killed; its exit then closes the rest. */
static void exec_abort(cray__io_op *op) {
  exec_op *x = (exec_op *)op;
  if (!x->failed && !x->exited) uv_process_kill(&x->proc, SIGKILL);
}

static void exec_free(cray__io_op *op) {
  exec_op *x = (exec_op *)op;
  free_list(x->argv);
  free_list(x->env);
  cray__free(x->cwd);
  cray__free(x->input);
  free(x->bufs[0].data);
  free(x->bufs[1].data);
}

cray__io_op *cray__exec_op(cray__io *io, const cray__exec_spec *spec) {
  exec_op *x = (exec_op *)cray__io_op_new(io, sizeof *x, exec_start, exec_free, exec_abort);
  if (!x) return NULL;
  x->argv = copy_list(spec->argv);
  x->env = spec->env ? copy_list(spec->env) : NULL;
  x->cwd = spec->cwd ? cray__strdup(spec->cwd) : NULL;
  if (spec->input) {
    x->input = cray__malloc(spec->input_len ? spec->input_len : 1);
    if (x->input) memcpy(x->input, spec->input, spec->input_len);
    x->input_len = spec->input_len;
  }
  x->timeout = spec->timeout;
  if (!x->argv || (spec->env && !x->env) || (spec->cwd && !x->cwd) ||
      (spec->input && !x->input)) {
    cray__io_op_release(&x->op);
    return NULL;
  }
  return &x->op;
}

void cray__exec_result_of(cray__io_op *op, cray__exec_result *out) {
  exec_op *x = (exec_op *)op;
  out->out = x->bufs[0].data ? x->bufs[0].data : "";
  out->out_len = x->bufs[0].len;
  out->err = x->bufs[1].data ? x->bufs[1].data : "";
  out->err_len = x->bufs[1].len;
  out->status = x->status;
  out->timed_out = x->timed_out;
}
