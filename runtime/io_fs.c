/*
 * io_fs.c: see io_fs.h.
 *
 * The loop queues each op as uv_queue_work: the work runs in a pool thread and touches
 * only the op; its after-work callback, on the loop thread, completes the op. At shutdown
 * an op not started yet is cancelled (uv_cancel); one running finishes first.
 */
#include "io_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"

typedef struct fs_op {
  cray__io_op op;
  uv_work_t work;
  int kind;
  char *path, *path2;
  char *data;         /* to write; then what was read, or the names */
  size_t len, count;
  cray__fs_stat st;
  int err;            /* negative errno, from the pool thread */
  const char *failed; /* path or path2 */
} fs_op;

/* Grows f->data to hold `more` bytes after f->len; 0 or -ENOMEM. */
static int reserve(fs_op *f, size_t *cap, size_t more) {
  if (f->len + more <= *cap) return 0;
  size_t n = *cap ? *cap : 4096;
  while (n < f->len + more) n *= 2;
  char *p = realloc(f->data, n);
  if (!p) return -ENOMEM;
  f->data = p;
  *cap = n;
  return 0;
}

static int read_all(fs_op *f) {
  int fd = open(f->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  free(f->data);
  f->data = NULL;
  f->len = 0;
  size_t cap = 0;
  struct stat st;
  int rc = fstat(fd, &st) == 0 ? reserve(f, &cap, (size_t)st.st_size + 1) : -errno;
  while (rc == 0) {
    if ((rc = reserve(f, &cap, 65536)) != 0) break;
    ssize_t n = read(fd, f->data + f->len, cap - f->len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) rc = -errno;
    if (n <= 0) break;
    f->len += (size_t)n;
  }
  close(fd);
  return rc;
}

static int write_all(fs_op *f, int append) {
  int fd = open(f->path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0666);
  if (fd < 0) return -errno;
  int rc = 0;
  for (size_t off = 0; off < f->len;) {
    ssize_t n = write(fd, f->data + off, f->len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      rc = -errno;
      break;
    }
    off += (size_t)n;
  }
  if (close(fd) != 0 && rc == 0) rc = -errno;
  return rc;
}

static int stat_path(fs_op *f) {
  struct stat st;
  if (lstat(f->path, &st) != 0) return -errno;
  f->st.size = (uint64_t)st.st_size;
  f->st.mtime = (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec * 1e-9;
  f->st.mode = st.st_mode & 07777;
  f->st.type = S_ISREG(st.st_mode)   ? "file"
               : S_ISDIR(st.st_mode) ? "directory"
               : S_ISLNK(st.st_mode) ? "link"
                                     : "other";
  return 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list(fs_op *f) {
  DIR *d = opendir(f->path);
  if (!d) return -errno;
  char **names = NULL;
  size_t n = 0, cap = 0, bytes = 0;
  int rc = 0;
  struct dirent *e;
  errno = 0;
  while ((e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (n == cap) {
      char **more = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof *names);
      if (!more) {
        rc = -ENOMEM;
        break;
      }
      names = more;
    }
    if (!(names[n] = strdup(e->d_name))) {
      rc = -ENOMEM;
      break;
    }
    bytes += strlen(names[n++]) + 1;
  }
  if (rc == 0 && errno) rc = -errno;
  closedir(d);
  if (rc == 0) {
    if (n) qsort(names, n, sizeof *names, by_name);
    free(f->data);
    f->data = malloc(bytes ? bytes : 1);
    f->len = 0;
    if (!f->data) rc = -ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
      size_t k = strlen(names[i]) + 1;
      memcpy(f->data + f->len, names[i], k);
      f->len += k;
    }
    f->count = n;
  }
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
  return rc;
}

static int remove_path(fs_op *f) { return remove(f->path) == 0 ? 0 : -errno; }

static void work(uv_work_t *w) {
  fs_op *f = w->data;
  f->failed = f->path;
  switch (f->kind) {
    case CRAY__FS_READ: f->err = read_all(f); break;
    case CRAY__FS_WRITE: f->err = write_all(f, 0); break;
    case CRAY__FS_APPEND: f->err = write_all(f, 1); break;
    case CRAY__FS_STAT: f->err = stat_path(f); break;
    case CRAY__FS_LIST: f->err = list(f); break;
    case CRAY__FS_REMOVE: f->err = remove_path(f); break;
    default:
      f->err = rename(f->path, f->path2) == 0 ? 0 : -errno;
      /* The target's directory missing is the likelier fault when the source exists. */
      if (f->err == -ENOENT && access(f->path, F_OK) == 0) f->failed = f->path2;
      break;
  }
}

static void after(uv_work_t *w, int status) {
  fs_op *f = w->data;
  cray__io_complete(&f->op, status < 0 ? status : f->err);
}

static void fs_start(cray__io *io, uv_loop_t *loop, cray__io_op *op) {
  (void)io;
  fs_op *f = (fs_op *)op;
  f->work.data = f;
  int rc = uv_queue_work(loop, &f->work, work, after);
  if (rc != 0) cray__io_complete(op, rc);
}

static void fs_abort(cray__io_op *op) { uv_cancel((uv_req_t *)&((fs_op *)op)->work); }

static void fs_free(cray__io_op *op) {
  fs_op *f = (fs_op *)op;
  cray__free(f->path);
  cray__free(f->path2);
  free(f->data);
}

cray__io_op *cray__fs_op(cray__io *io, int kind, const char *path, const char *path2,
                         const char *data, size_t len) {
  fs_op *f = (fs_op *)cray__io_op_new(io, sizeof *f, fs_start, fs_free, fs_abort);
  if (!f) return NULL;
  f->kind = kind;
  f->path = cray__strdup(path);
  f->path2 = path2 ? cray__strdup(path2) : NULL;
  if (data) {
    f->data = malloc(len ? len : 1);
    if (f->data) memcpy(f->data, data, len);
    f->len = len;
  }
  if (!f->path || (path2 && !f->path2) || (data && !f->data)) {
    cray__io_op_release(&f->op);
    return NULL;
  }
  return &f->op;
}

const char *cray__fs_bytes(cray__io_op *op, size_t *len, size_t *count) {
  fs_op *f = (fs_op *)op;
  *len = f->len;
  if (count) *count = f->count;
  return f->data ? f->data : "";
}

const cray__fs_stat *cray__fs_stat_of(cray__io_op *op) { return &((fs_op *)op)->st; }

const char *cray__fs_error_path(cray__io_op *op) {
  fs_op *f = (fs_op *)op;
  return f->failed ? f->failed : f->path;
}
