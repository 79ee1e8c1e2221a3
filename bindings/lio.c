/*
 * lio.c: the C half of cray.tcp, cray.fs and cray.exec (lua/io.lua wraps these).
 *
 * A call that must wait does as cray.get does: in a task it arms a wait, hands the loop an
 * op that will wake the task, and yields; lua/io.lua calls again on CRAY__RETRY, and the
 * call looks at the op's outcome. Elsewhere (the driver) it blocks its thread on the op.
 *
 * Two shapes of wait:
 * - on a socket handle: the op lives in the handle (h->wait[dir]) between the calls, and
 *   the call itself tries the system call again;
 * - on a one-shot op (a name look-up, a file call, a subprocess): the op lives in a Lua
 *   userdata (an "op box", released by its __gc) that lua/io.lua passes to each call.
 */
#include "lio.h"

#include <lauxlib.h>
#include <string.h>

#include "../runtime/io.h"
#include "../runtime/io_exec.h"
#include "../runtime/io_fs.h"
#include "../runtime/io_tcp.h"
#include "../runtime/wait.h"
#include "executor.h"
#include "module.h"

#define OP_BOX_MT "cray.io.op"

static cray__lstate *self(lua_State *L) { return lua_touserdata(L, lua_upvalueindex(1)); }

static _Thread_local char thread_token; /* the user of handles on a thread that is no worker */

static cray__io *io_of(lua_State *L, cray__lstate *ls) {
  cray__module_rt(L, ls);
  return cray__sched_io(cray__exec_sched(L, ls));
}

static double opt_deadline(lua_State *L, int i) { return luaL_optnumber(L, i, -1); }

static int raise_timeout(lua_State *L, const char *fn) {
  return cray__raise(L, "timeout", "%s: timed out", fn);
}

/* ---- waiting on a socket handle ---- */

typedef struct io_call {
  cray__io *io;
  cray__io_handle *h;
  uint64_t id;
  int dir, worker;
  cray__task *task;
  void *owner, *user;
  const char *fn, *what;
} io_call;

static const char *kind_name(int kind) {
  return kind == CRAY__IO_LISTENER ? "tcp listener" : "tcp connection";
}

/* Who calls: the task and its owner (its actor, or itself), or this thread. A call that
 * may wait (`yieldable` >= 0) checks first that it can. */
static void caller(lua_State *L, cray__lstate *ls, io_call *c, int yieldable) {
  c->worker = yieldable >= 0 ? cray__exec_can_wait(L, ls, yieldable, c->fn) : 0;
  c->io = io_of(L, ls);
  c->task = cray__exec_current(ls);
  c->owner = c->task ? (c->task->actor ? (void *)c->task->actor : (void *)c->task) : NULL;
  c->user = c->task ? (void *)c->task : (void *)&thread_token;
}

/* Starts (or, after a wait, goes on) using direction dir of handle `id`; raises when it
 * cannot, saying why. */
static void begin(lua_State *L, cray__lstate *ls, io_call *c, int kind, int dir, int yieldable,
                  const char *fn) {
  c->fn = fn;
  c->dir = dir;
  c->what = kind_name(kind);
  c->id = (uint64_t)luaL_checknumber(L, 1);
  caller(L, ls, c, yieldable);
  const char *why;
  c->h = cray__io_use(c->io, c->id, kind, dir, c->owner, c->task && c->task->actor, c->user,
                      &why);
  if (c->h) return;
  if (strcmp(why, "closed") == 0)
    cray__raise(L, "closed", "%s: %s %llu is closed", fn, c->what, (unsigned long long)c->id);
  if (strcmp(why, "kind") == 0)
    cray__raise(L, "invalid_argument", "%s: handle %llu is not a %s", fn,
                (unsigned long long)c->id, c->what);
  cray__raise(L, "busy",
              "%s: %s %llu is in use by another task or actor at the same time (%s); a "
              "handle is used from one place at a time: hand it over when done with it",
              fn, c->what, (unsigned long long)c->id,
              strcmp(why, "busy") == 0 ? (dir == CRAY__IO_IN ? "reading" : "writing")
                                       : "its other direction");
}

static void end(io_call *c) {
  if (c->h) cray__io_unuse(c->h, c->dir);
  c->h = NULL;
}

/* Stops using the handle and raises the error of libuv code rc. */
static int fail(lua_State *L, io_call *c, int rc) {
  end(c);
  if (rc == UV_ECANCELED)
    return cray__raise(L, "closed", "%s: %s %llu was closed while it waited", c->fn, c->what,
                       (unsigned long long)c->id);
  return cray__raise(L, "io_error", "%s: %s %llu: %s (%s)", c->fn, c->what,
                     (unsigned long long)c->id, uv_strerror(rc), uv_err_name(rc));
}

/* The outcome of the last wait: 1 while it goes on, else 0 (ready: look again) or an
 * error (raised here). */
static int waiting(lua_State *L, io_call *c) {
  cray__io_op *op = c->h->wait[c->dir];
  if (!op) return 0;
  if (!cray__io_op_done(op)) return 1;
  int rc = op->result;
  c->h->wait[c->dir] = NULL;
  cray__io_op_release(op);
  if (rc < 0) fail(L, c, rc);
  return 0;
}

/* The handle would block: waits until it is ready (or the deadline, which raises). Returns
 * 1 when the caller must `return lua_yield(L, 0)`, 0 when it may look again now. */
static int wait_ready(lua_State *L, cray__lstate *ls, io_call *c, double deadline) {
  if (deadline >= 0 && cray__now() >= deadline) {
    end(c);
    raise_timeout(L, c->fn);
  }
  cray__io_op *op = c->h->wait[c->dir];
  int fresh = !op;
  if (fresh && !(op = c->h->wait[c->dir] = cray__io_poll_op(c->h, c->dir))) {
    end(c);
    cray__raise(L, "out_of_memory", "%s: no memory to wait", c->fn);
  }
  if (c->worker) {
    cray__exec_arm(L, ls, NULL, 0, 0, deadline, 1, c->fn);
    if (fresh) cray__io_watch(op, c->task);
    /* The task stays the direction's user; the op holds the handle until it comes back. */
    cray__io_handle_release(c->h);
    c->h = NULL;
    return 1;
  }
  if (fresh) cray__io_watch(op, NULL);
  cray__io_op_wait(op, deadline);
  return 0;
}

/* ---- one-shot ops ---- */

typedef struct op_box {
  cray__io_op *op;
  int submitted;
} op_box;

static int box_gc(lua_State *L) {
  op_box *b = luaL_checkudata(L, 1, OP_BOX_MT);
  if (b->op) cray__io_op_release(b->op);
  b->op = NULL;
  return 0;
}

/* Pushes a box holding op (whose reference it takes); raises when op is NULL. */
static void push_box(lua_State *L, cray__io_op *op, const char *fn) {
  if (!op) cray__raise(L, "out_of_memory", "%s: no memory", fn);
  op_box *b = lua_newuserdata(L, sizeof *b);
  b->op = op;
  b->submitted = 0;
  if (luaL_newmetatable(L, OP_BOX_MT)) {
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
}

static cray__io_op *box_op(lua_State *L, int i) {
  op_box *b = luaL_checkudata(L, i, OP_BOX_MT);
  return b->op;
}

/* op_wait(box, deadline, yieldable, fn) -> true when the op is over; CRAY__RETRY after a
 * yield; raises a timeout at the deadline. */
static int l_op_wait(lua_State *L) {
  cray__lstate *ls = self(L);
  op_box *b = luaL_checkudata(L, 1, OP_BOX_MT);
  double deadline = opt_deadline(L, 2);
  const char *fn = luaL_checkstring(L, 4);
  if (cray__io_op_done(b->op)) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (deadline >= 0 && cray__now() >= deadline) return raise_timeout(L, fn);
  int worker = cray__exec_can_wait(L, ls, lua_toboolean(L, 3), fn);
  if (worker) {
    cray__exec_arm(L, ls, NULL, 0, 0, deadline, 1, fn);
    if (!b->submitted) cray__io_submit(b->op, cray__exec_current(ls));
    b->submitted = 1;
    return lua_yield(L, 0);
  }
  if (!b->submitted) cray__io_submit(b->op, NULL);
  b->submitted = 1;
  if (!cray__io_op_wait(b->op, deadline)) return raise_timeout(L, fn);
  lua_pushboolean(L, 1);
  return 1;
}

/* ---- tcp ---- */

/* numeric_addr(host, port) -> the address as a string, or nil when host is a name */
static int l_numeric_addr(lua_State *L) {
  cray__tcp_addr a;
  if (cray__tcp_numeric(luaL_checkstring(L, 1), (int)luaL_checkinteger(L, 2), &a) != 0) return 0;
  lua_pushlstring(L, (const char *)&a, sizeof a);
  return 1;
}

/* resolve_op(host, port) -> an op box for the look-up */
static int l_resolve_op(lua_State *L) {
  cray__io *io = io_of(L, self(L));
  push_box(L, cray__tcp_resolve_op(io, luaL_checkstring(L, 1), (int)luaL_checkinteger(L, 2)),
           "cray.tcp");
  return 1;
}

/* resolved(box, host, fn) -> the address as a string; raises when the look-up failed */
static int l_resolved(lua_State *L) {
  cray__io_op *op = box_op(L, 1);
  if (op->result < 0)
    return cray__raise(L, "io_error", "%s: cannot resolve '%s': %s (%s)", luaL_checkstring(L, 3),
                       luaL_checkstring(L, 2), uv_strerror(op->result), uv_err_name(op->result));
  cray__tcp_addr a;
  cray__tcp_resolved(op, &a);
  lua_pushlstring(L, (const char *)&a, sizeof a);
  return 1;
}

static const cray__tcp_addr *check_addr(lua_State *L, int i) {
  size_t len;
  const char *s = luaL_checklstring(L, i, &len);
  if (len != sizeof(cray__tcp_addr)) luaL_argerror(L, i, "not an address");
  return (const cray__tcp_addr *)s;
}

static int push_id(lua_State *L, cray__io_handle *h) {
  lua_pushnumber(L, (lua_Number)h->id);
  cray__io_handle_release(h);
  return 1;
}

/* listen(addr, backlog, where) -> listener id; connect(addr, where) -> connection id,
 * whose connect may still be under way (connect_wait). */
static int open_tcp(lua_State *L, int listen) {
  cray__lstate *ls = self(L);
  io_call c = {.fn = listen ? "cray.tcp.listen" : "cray.tcp.connect"};
  caller(L, ls, &c, -1);
  cray__io_handle *h;
  const cray__tcp_addr *addr = check_addr(L, 1);
  int rc = listen ? cray__tcp_listen(c.io, addr, (int)luaL_optinteger(L, 2, 0), c.owner, &h)
                  : cray__tcp_connect(c.io, addr, c.owner, &h);
  if (rc != 0 && !(rc == UV_EAGAIN && !listen))
    return cray__raise(L, "io_error", "%s: cannot %s %s: %s (%s)", c.fn,
                       listen ? "listen on" : "connect to", luaL_checkstring(L, listen ? 3 : 2),
                       uv_strerror(rc), uv_err_name(rc));
  return push_id(L, h);
}

static int l_listen(lua_State *L) { return open_tcp(L, 1); }

/* accept(id, _, deadline, yieldable) -> connection id, or CRAY__RETRY after a yield */
static int l_accept(lua_State *L) {
  cray__lstate *ls = self(L);
  io_call c;
  begin(L, ls, &c, CRAY__IO_LISTENER, CRAY__IO_IN, lua_toboolean(L, 4), "srv:accept");
  double deadline = opt_deadline(L, 3);
  for (;;) {
    if (!waiting(L, &c)) {
      cray__io_handle *conn;
      int rc = cray__tcp_accept(c.h, c.owner, &conn);
      if (rc == 0) {
        end(&c);
        return push_id(L, conn);
      }
      if (rc != UV_EAGAIN) return fail(L, &c, rc);
    }
    if (wait_ready(L, ls, &c, deadline)) return lua_yield(L, 0);
  }
}

static int l_connect(lua_State *L) { return open_tcp(L, 0); }

/* connect_wait(id, _, deadline, yieldable, where) -> true once connected, or CRAY__RETRY;
 * raises (and closes the connection) when the connect failed or timed out. */
static int l_connect_wait(lua_State *L) {
  cray__lstate *ls = self(L);
  io_call c;
  begin(L, ls, &c, CRAY__IO_CONN, CRAY__IO_OUT, lua_toboolean(L, 4), "cray.tcp.connect");
  double deadline = opt_deadline(L, 3);
  for (;;) {
    int rc = 0;
    if (c.h->wait[c.dir] && !cray__io_op_done(c.h->wait[c.dir])) {
      rc = UV_EAGAIN;
    } else {
      cray__io_op *op = c.h->wait[c.dir];
      if (op) rc = op->result, c.h->wait[c.dir] = NULL, cray__io_op_release(op);
      if (rc == 0) rc = cray__tcp_connected(c.h);
      if (rc == 0 && !op) rc = UV_EAGAIN; /* not watched yet: wait for writability first */
    }
    if (rc == 0) {
      end(&c);
      lua_pushboolean(L, 1);
      return 1;
    }
    if (rc != UV_EAGAIN || (deadline >= 0 && cray__now() >= deadline)) {
      end(&c);
      cray__io_close(c.io, c.id, CRAY__IO_CONN);
      if (rc == UV_EAGAIN) return raise_timeout(L, c.fn);
      return cray__raise(L, "io_error", "cray.tcp.connect: cannot connect to %s: %s (%s)",
                         luaL_checkstring(L, 5), uv_strerror(rc), uv_err_name(rc));
    }
    if (wait_ready(L, ls, &c, deadline)) return lua_yield(L, 0);
  }
}

/* read(id, n, deadline, yieldable) -> a chunk, exactly n bytes (fewer only at the end),
 * nil at the end of the stream, or CRAY__RETRY */
static int l_read(lua_State *L) {
  cray__lstate *ls = self(L);
  io_call c;
  begin(L, ls, &c, CRAY__IO_CONN, CRAY__IO_IN, lua_toboolean(L, 4), "conn:read");
  lua_Integer n = luaL_optinteger(L, 2, 0);
  double deadline = opt_deadline(L, 3);
  for (;;) {
    if (!waiting(L, &c)) {
      int eof;
      int rc = cray__tcp_fill(c.h, (size_t)n, &eof);
      if (rc > 0 || (rc == 0 && eof)) {
        size_t take = n > 0 && (size_t)rc > (size_t)n ? (size_t)n : (size_t)rc;
        if (take) lua_pushlstring(L, cray__tcp_take(c.h, take), take);
        else lua_pushnil(L);
        end(&c);
        return 1;
      }
      if (rc != UV_EAGAIN) return fail(L, &c, rc);
    }
    if (wait_ready(L, ls, &c, deadline)) return lua_yield(L, 0);
  }
}

/* write(id, data, deadline, yieldable) -> true once the kernel took all of data, or
 * CRAY__RETRY (with what is written so far kept in the handle) */
static int l_write(lua_State *L) {
  cray__lstate *ls = self(L);
  io_call c;
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  int resumed;
  begin(L, ls, &c, CRAY__IO_CONN, CRAY__IO_OUT, lua_toboolean(L, 4), "conn:write");
  resumed = c.h->wait[c.dir] != NULL;
  if (!resumed) c.h->written = 0;
  double deadline = opt_deadline(L, 3);
  for (;;) {
    if (!waiting(L, &c)) {
      int rc = cray__tcp_write(c.h, data, len);
      if (rc == 0) {
        end(&c);
        lua_pushboolean(L, 1);
        return 1;
      }
      if (rc != UV_EAGAIN) return fail(L, &c, rc);
    }
    if (wait_ready(L, ls, &c, deadline)) return lua_yield(L, 0);
  }
}

/* close(id, kind) -> true when it was open */
static int l_close(lua_State *L) {
  cray__io *io = io_of(L, self(L));
  int kind = lua_toboolean(L, 2) ? CRAY__IO_LISTENER : CRAY__IO_CONN;
  lua_pushboolean(L, cray__io_close(io, (uint64_t)luaL_checknumber(L, 1), kind) == 0);
  return 1;
}

/* port(id, is_listener) -> the local port */
static int l_port(lua_State *L) {
  cray__lstate *ls = self(L);
  io_call c;
  int listener = lua_toboolean(L, 2);
  begin(L, ls, &c, listener ? CRAY__IO_LISTENER : CRAY__IO_CONN, CRAY__IO_LOOK, -1,
        listener ? "srv:port" : "conn:port");
  int rc = cray__tcp_port(c.h);
  if (rc < 0) return fail(L, &c, rc);
  end(&c);
  lua_pushinteger(L, rc);
  return 1;
}

/* peer(id) -> "host:port" of the other end */
static int l_peer(lua_State *L) {
  cray__lstate *ls = self(L);
  io_call c;
  begin(L, ls, &c, CRAY__IO_CONN, CRAY__IO_LOOK, -1, "conn:peer");
  char buf[80];
  int rc = cray__tcp_peer(c.h, buf, sizeof buf);
  if (rc < 0) return fail(L, &c, rc);
  end(&c);
  lua_pushstring(L, buf);
  return 1;
}

/* ---- files ---- */

static const char *const fs_kinds[] = {"read_file", "write_file", "append_file", "stat",
                                       "list_dir", "remove", "rename", NULL};

/* fs_op(kind, path [, path2 | data]) -> an op box for the call */
static int l_fs_op(lua_State *L) {
  cray__io *io = io_of(L, self(L));
  int kind = luaL_checkoption(L, 1, NULL, fs_kinds);
  const char *path = luaL_checkstring(L, 2), *path2 = NULL, *data = NULL;
  size_t len = 0;
  if (kind == CRAY__FS_RENAME) path2 = luaL_checkstring(L, 3);
  if (kind == CRAY__FS_WRITE || kind == CRAY__FS_APPEND) data = luaL_checklstring(L, 3, &len);
  push_box(L, cray__fs_op(io, kind, path, path2, data, len), "cray.fs");
  return 1;
}

/* fs_result(box, kind, fn) -> what the call gives (see lua/io.lua); raises its error,
 * naming the path and the system error */
static int l_fs_result(lua_State *L) {
  cray__io_op *op = box_op(L, 1);
  int kind = luaL_checkoption(L, 2, NULL, fs_kinds);
  if (op->result < 0)
    return cray__raise(L, "io_error", "%s: %s: %s (%s)", luaL_checkstring(L, 3),
                       cray__fs_error_path(op), uv_strerror(op->result),
                       uv_err_name(op->result));
  size_t len, count;
  const char *bytes = cray__fs_bytes(op, &len, &count);
  if (kind == CRAY__FS_READ) {
    lua_pushlstring(L, bytes, len);
  } else if (kind == CRAY__FS_LIST) {
    lua_createtable(L, (int)count, 0);
    for (size_t i = 0; i < count; i++) {
      size_t k = strlen(bytes);
      lua_pushlstring(L, bytes, k);
      lua_rawseti(L, -2, (int)i + 1);
      bytes += k + 1;
    }
  } else if (kind == CRAY__FS_STAT) {
    const cray__fs_stat *st = cray__fs_stat_of(op);
    lua_createtable(L, 0, 4);
    lua_pushnumber(L, (lua_Number)st->size);
    lua_setfield(L, -2, "size");
    lua_pushnumber(L, st->mtime);
    lua_setfield(L, -2, "mtime");
    lua_pushinteger(L, st->mode);
    lua_setfield(L, -2, "mode");
    lua_pushstring(L, st->type);
    lua_setfield(L, -2, "type");
  } else {
    lua_pushboolean(L, 1);
  }
  return 1;
}

/* ---- processes ---- */

/* The strings of array t (at index i) in a NULL-terminated vector, kept alive by t. */
static const char **strings_of(lua_State *L, int i, size_t *n) {
  *n = lua_objlen(L, i);
  const char **v = lua_newuserdata(L, (*n + 1) * sizeof *v); /* freed by the GC */
  for (size_t k = 0; k < *n; k++) {
    lua_rawgeti(L, i, (int)k + 1);
    v[k] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  v[*n] = NULL;
  return v;
}

/* exec_op(argv, input, cwd, env, timeout) -> an op box; argv and env are checked arrays of
 * strings (lua/io.lua), env may be nil */
static int l_exec_op(lua_State *L) {
  cray__io *io = io_of(L, self(L));
  size_t n;
  cray__exec_spec spec = {0};
  spec.argv = strings_of(L, 1, &n);
  spec.input = lua_isnil(L, 2) ? NULL : luaL_checklstring(L, 2, &spec.input_len);
  spec.cwd = luaL_optstring(L, 3, NULL);
  spec.env = lua_isnil(L, 4) ? NULL : strings_of(L, 4, &n);
  spec.timeout = luaL_optnumber(L, 5, -1);
  push_box(L, cray__exec_op(io, &spec), "cray.exec");
  return 1;
}

/* exec_result(box, name) -> stdout, status, stderr; raises when it could not run or
 * timed out */
static int l_exec_result(lua_State *L) {
  cray__io_op *op = box_op(L, 1);
  const char *name = luaL_checkstring(L, 2);
  if (op->result < 0)
    return cray__raise(L, "io_error", "cray.exec: cannot run '%s': %s (%s)", name,
                       uv_strerror(op->result), uv_err_name(op->result));
  cray__exec_result r;
  cray__exec_result_of(op, &r);
  if (r.timed_out)
    return cray__raise(L, "timeout", "cray.exec: '%s' timed out and was killed", name);
  lua_pushlstring(L, r.out, r.out_len);
  lua_pushinteger(L, r.status);
  lua_pushlstring(L, r.err, r.err_len);
  return 3;
}

const luaL_Reg cray__io_functions[] = {
    {"exec_op", l_exec_op},
    {"exec_result", l_exec_result},
    {"fs_op", l_fs_op},
    {"fs_result", l_fs_result},
    {"io_op_wait", l_op_wait},
    {"tcp_numeric_addr", l_numeric_addr},
    {"tcp_resolve_op", l_resolve_op},
    {"tcp_resolved", l_resolved},
    {"tcp_listen", l_listen},
    {"tcp_accept", l_accept},
    {"tcp_connect", l_connect},
    {"tcp_connect_wait", l_connect_wait},
    {"tcp_read", l_read},
    {"tcp_write", l_write},
    {"tcp_close", l_close},
    {"tcp_port", l_port},
    {"tcp_peer", l_peer},
    {NULL, NULL},
};
