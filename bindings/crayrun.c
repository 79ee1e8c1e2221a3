/*
 * crayrun.c: the crayrun command, a luajit with cray started (docs/crayrun.1).
 *
 * It reads its options, opens a LuaJIT state with the standard libraries and `cray`,
 * starts the runtime with cray.init{...} built from the options, then runs `-e` chunks and
 * the script with the global `arg` set as luajit sets it. Exit status: 0; 1 for an
 * uncaught error (printed with its traceback); 2 for bad usage; 3 when the runtime gave
 * up on tasks that did not end ($CRAY_STOP_TIMEOUT seconds after the script); 128 + the
 * signal's number after SIGINT (130) or SIGTERM (143).
 *
 * Signals: the runtime's threads block them, so SIGINT and SIGTERM reach the main thread,
 * the driver's. The handler sets a hook in the driver's state that raises "interrupted"
 * at its next instruction (as luajit does for Ctrl-C) and posts a semaphore to a thread
 * of crayrun's own, which starts stopping the runtime: tasks are cancelled, so a driver
 * waiting for one wakes, and a cray.sleep ends. The script then unwinds, the runtime shuts
 * down cleanly (its spill directory removed), and crayrun exits with 128 + the signal. A
 * second signal kills the process at once.
 *
 * Started by an MPI launcher (or with --cluster mpi), it loads the MPI transport
 * (cray_mpi.so, beside crayrun or in ../lib/cray) and joins the job before cray.init
 * (runtime/cluster.h): rank 0 runs the script, the other ranks serve it, and every rank
 * exits with rank 0's status. Without one it never loads MPI.
 */
#include <dlfcn.h>
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <luajit.h>
#include <lualib.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../runtime/alloc.h"
#include "../runtime/cluster.h"
#include "../runtime/cray.h"
#include "../runtime/spill.h"
#include "../runtime/trace.h"
#include "driver.h"
#include "module.h"

#define MAX_CHUNKS 64
#define MAX_RESOURCES 64

static const char usage_text[] =
    "usage: crayrun [options] [script.lua | -] [args...]\n"
    "\n"
    "Runs a Lua script with LuaJIT and the cray runtime started; `cray` is ready to use.\n"
    "\n"
    "options:\n"
    "  -e CODE               run CODE before the script (repeatable)\n"
    "  -w, --workers N       worker threads (default: online CPUs)\n"
    "  -m, --memory SIZE     object store budget, as in 512M or 2G (default: 30% of RAM)\n"
    "  --spill-dir DIR       where objects past the budget go on disk\n"
    "  --spill-max SIZE      disk space cap for spilled objects\n"
    "  --worker-memory SIZE  Lua heap limit per worker state\n"
    "  --task-memory SIZE    Lua heap share of one task or actor call (default: half of\n"
    "                        --worker-memory)\n"
    "  --resource NAME=N     a custom resource with N units (repeatable)\n"
    "  --stats               print a table of what ran to stderr at exit\n"
    "  --no-progress         no live progress line on stderr (shown only on a terminal)\n"
    "  --tag-output          start each line printed in a task with \"(its name wN) \"\n"
    "  --objects-at-exit     list the objects still in the store to stderr at exit\n"
    "  --timeline FILE       record a timeline, written to FILE at exit (Chrome trace\n"
    "                        events: open it in ui.perfetto.dev); FILE.rankN on rank N > 0\n"
    "  --cluster MODE        mpi: join an MPI job (the default under mpirun or srun);\n"
    "                        none: run alone even under a launcher\n"
    "  -v, --version         print the version and exit\n"
    "  -h, --help            print this help and exit\n"
    "  --                    stop reading options\n"
    "\n"
    "A script of - reads the script from standard input.\n"
    "Exit status: 0 on success, 1 for an uncaught error, 2 for bad usage, 130 after\n"
    "Ctrl-C (SIGINT) and 143 after SIGTERM, once shut down (a second signal kills at once).\n";

typedef struct cli {
  const char *chunks[MAX_CHUNKS];
  int nchunks;
  const char *workers, *memory, *spill_dir, *spill_max, *worker_memory, *task_memory, *cluster,
      *timeline;
  const char *resources[MAX_RESOURCES];
  int nresources;
  int stats, no_progress, objects, tag_output;
  int script; /* index in argv of the script, or argc when there is none */
} cli;

static int usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("crayrun: ", stderr);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs("\nTry 'crayrun --help'.\n", stderr);
  return 2;
}

/* Matches argv[*i] against a short and a long option name that takes a value, in the
 * forms "-w 4", "-w4", "--workers 4" and "--workers=4". Returns 1 and sets *val when it
 * matches, 0 when it does not, -1 when the value is missing. */
static int take_value(int argc, char **argv, int *i, const char *shrt, const char *lng,
                      const char **val) {
  const char *a = argv[*i];
  size_t ll = lng ? strlen(lng) : 0;
  if (lng && strncmp(a, lng, ll) == 0 && a[ll] == '=') {
    *val = a + ll + 1;
    return 1;
  }
  int exact = (shrt && strcmp(a, shrt) == 0) || (lng && strcmp(a, lng) == 0);
  if (!exact && shrt && strncmp(a, shrt, 2) == 0 && a[2] && shrt[1] != '-') {
    *val = a + 2;
    return 1;
  }
  if (!exact) return 0;
  if (*i + 1 >= argc) return -1;
  *val = argv[++*i];
  return 1;
}

/* Parses options; returns -1 to go on, or an exit status. */
static int parse_cli(int argc, char **argv, cli *c) {
  int i;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i], *v = NULL;
    if (a[0] != '-' || strcmp(a, "-") == 0) break;
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      fputs(usage_text, stdout);
      return 0;
    }
    if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
      printf("crayrun %s (%s)\n", CRAY_VERSION_STRING, LUAJIT_VERSION);
      return 0;
    }
    const struct {
      const char *name;
      int *flag;
    } flags[] = {{"--stats", &c->stats},
                 {"--no-progress", &c->no_progress},
                 {"--objects-at-exit", &c->objects},
                 {"--tag-output", &c->tag_output}};
    int flagged = 0;
    for (size_t k = 0; k < sizeof flags / sizeof *flags && !flagged; k++)
      if (strcmp(a, flags[k].name) == 0) *flags[k].flag = flagged = 1;
    if (flagged) continue;
    static const struct {
      const char *shrt, *lng;
      size_t field;
    } valued[] = {
        {"-e", NULL, 0},
        {"-w", "--workers", offsetof(cli, workers)},
        {"-m", "--memory", offsetof(cli, memory)},
        {NULL, "--spill-dir", offsetof(cli, spill_dir)},
        {NULL, "--spill-max", offsetof(cli, spill_max)},
        {NULL, "--worker-memory", offsetof(cli, worker_memory)},
        {NULL, "--task-memory", offsetof(cli, task_memory)},
        {NULL, "--cluster", offsetof(cli, cluster)},
        {NULL, "--timeline", offsetof(cli, timeline)},
        {NULL, "--resource", 1},
    };
    int matched = 0;
    for (size_t k = 0; k < sizeof valued / sizeof *valued && !matched; k++) {
      int r = take_value(argc, argv, &i, valued[k].shrt, valued[k].lng, &v);
      if (r < 0) return usage_error("option '%s' needs a value", a);
      if (r == 0) continue;
      matched = 1;
      if (valued[k].field == 0) {
        if (c->nchunks == MAX_CHUNKS) return usage_error("too many -e options");
        c->chunks[c->nchunks++] = v;
      } else if (valued[k].field == 1) {
        if (c->nresources == MAX_RESOURCES) return usage_error("too many --resource options");
        c->resources[c->nresources++] = v;
      } else {
        *(const char **)((char *)c + valued[k].field) = v;
      }
    }
    if (!matched) return usage_error("unknown option '%s'", a);
  }
  c->script = i;
  if (c->cluster && strcmp(c->cluster, "mpi") != 0 && strcmp(c->cluster, "none") != 0)
    return usage_error("--cluster wants mpi or none, not '%s'", c->cluster);
  if (i >= argc && c->nchunks == 0) return usage_error("no script given");
  return -1;
}

/* Checks the option values that need no Lua and pushes cray.init's options table. */
static int push_init_options(lua_State *L, const cli *c) {
  size_t n;
  lua_newtable(L);
  if (c->workers) {
    char *end;
    long w = strtol(c->workers, &end, 10);
    if (*end || end == c->workers || w < 1 || w > 4096)
      return usage_error("--workers wants a whole number from 1 to 4096, not '%s'", c->workers);
    lua_pushinteger(L, w);
    lua_setfield(L, -2, "workers");
  }
  /* 0 would mean the default (memory) or no limit (the others) to cray_open: refused, as
   * cray.init refuses it, so that a value given is a value used. */
  const struct {
    const char *value, *option, *field, *least;
    size_t min;
  } sizes[] = {{c->memory, "--memory", "memory", "1 byte", 1},
               {c->spill_max, "--spill-max", "spill_max", "1 byte", 1},
               {c->worker_memory, "--worker-memory", "worker_memory", "1M",
                CRAY_WORKER_MEMORY_MIN},
               {c->task_memory, "--task-memory", "task_memory", "1 byte", 1}};
  for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
    if (!sizes[k].value) continue;
    if (cray_parse_size(sizes[k].value, &n) != 0 || n < sizes[k].min)
      return usage_error("%s wants a size of at least %s, such as 512M or 2G, not '%s'",
                         sizes[k].option, sizes[k].least, sizes[k].value);
    lua_pushnumber(L, (lua_Number)n);
    lua_setfield(L, -2, sizes[k].field);
  }
  if (c->spill_dir) {
    lua_pushstring(L, c->spill_dir);
    lua_setfield(L, -2, "spill_dir");
  }
  if (c->tag_output) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "tag_output");
  }
  if (c->nresources) {
    lua_newtable(L);
    for (int k = 0; k < c->nresources; k++) {
      const char *r = c->resources[k], *eq = strchr(r, '=');
      char *end = NULL;
      double units = eq ? strtod(eq + 1, &end) : -1;
      if (!eq || eq == r || end == eq + 1 || *end || !(units >= 0) || isinf(units))
        return usage_error("--resource wants NAME=N with N a finite number >= 0, not '%s'", r);
      lua_pushlstring(L, r, (size_t)(eq - r));
      lua_pushnumber(L, units);
      lua_rawset(L, -3);
    }
    lua_setfield(L, -2, "resources");
  }
  return -1;
}

/* cray.timeline(path): writes the timeline there, saying why on stderr when it cannot.
 * 0 or 1. */
static int timeline(lua_State *L, const char *path) {
  int top = lua_gettop(L);
  lua_getglobal(L, "cray");
  lua_getfield(L, -1, "timeline");
  lua_pushstring(L, path);
  int rc = lua_pcall(L, 1, 0, 0);
  if (rc != 0) {
    if (lua_istable(L, -1)) lua_getfield(L, -1, "message");
    fprintf(stderr, "crayrun: %s\n", lua_isstring(L, -1) ? lua_tostring(L, -1) : "cray.timeline failed");
  }
  lua_settop(L, top);
  return rc != 0;
}

/* Starts (on = 1) or stops and erases the progress line (cray._progress). */
static void progress(lua_State *L, int on) {
  lua_getglobal(L, "cray");
  lua_getfield(L, -1, "_progress");
  lua_pushboolean(L, on);
  if (lua_pcall(L, 1, 0, 0) != 0) lua_pop(L, 1); /* no line is no harm */
  lua_pop(L, 1);
}

/* ---- signals ---- */

static volatile sig_atomic_t got_signal; /* the first SIGINT or SIGTERM, 0 before */
static lua_State *volatile driver;       /* the driver's state while it runs chunks */
static volatile sig_atomic_t closing;    /* the script is over: the runtime shuts down */
static volatile sig_atomic_t quitting;   /* the signal thread is to end */
static sem_t wake_sem;

static void interrupted_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted");
}

/* Runs on the main thread (the only one that takes these signals). A second signal, or
 * one while the runtime shuts down already, ends the process at once, removing what the
 * runtime spilled to disk. */
static void on_signal(int sig) {
  if (got_signal || closing) {
    cray__spill_remove_now();
    signal(sig, SIG_DFL);
    raise(sig);
    return;
  }
  got_signal = sig;
  cray__module_signalled();
  lua_State *L = driver;
  if (L) lua_sethook(L, interrupted_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
  sem_post(&wake_sem);
}

static void *signal_thread(void *arg) {
  (void)arg;
  for (;;) {
    while (sem_wait(&wake_sem) != 0) continue;
    if (quitting) return NULL;
    cray__cluster *c = cray__cluster_process();
    if (c) cray__cluster_signalled(c);
    cray__module_interrupt();
  }
}

static int start_signals(pthread_t *thread) {
  if (sem_init(&wake_sem, 0, 0) != 0 || cray__thread_start(thread, signal_thread, NULL) != 0)
    return -1;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  return 0;
}

static void stop_signals(pthread_t thread) {
  quitting = 1;
  sem_post(&wake_sem);
  pthread_join(thread, NULL);
  sem_destroy(&wake_sem);
}

/* Runs the loaded chunk (load status `status`) under its nargs arguments; prints an
 * uncaught error. Returns 0 or 1. */
static int run_chunk(lua_State *L, int status, int nargs) {
  if (status == 0) status = cray__driver_pcall(L, nargs);
  else lua_pop(L, nargs); /* leaves the load error on top */
  if (status == 0) return 0;
  progress(L, 0); /* the error goes where the line was */
  if (!got_signal) fprintf(stderr, "crayrun: %s\n", lua_tostring(L, -1));
  lua_pop(L, 1);
  return 1;
}

/* Puts the script's directory first on package.path, so the script and its tasks (whose
 * states copy the driver's path) find the modules beside it. */
static void add_script_dir(lua_State *L, const char *path) {
  const char *slash = strrchr(path, '/');
  lua_getglobal(L, "package");
  if (slash) lua_pushlstring(L, path, (size_t)(slash - path + 1));
  else lua_pushliteral(L, "./");
  lua_pushliteral(L, "?.lua;");
  lua_pushvalue(L, -2);
  lua_pushliteral(L, "?/init.lua;");
  lua_getfield(L, -5, "path");
  lua_concat(L, 5);
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
}

/* The global `arg`: arg[0] is the script, arg[1..] its arguments, arg[-k] what came
 * before (as luajit sets it). Returns how many script arguments it pushed. */
static int set_args(lua_State *L, int argc, char **argv, int script) {
  lua_createtable(L, argc - script, script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
  int n = 0;
  for (int i = script + 1; i < argc; i++, n++) lua_pushstring(L, argv[i]);
  return n;
}

static const char stats_code[] = "io.stderr:write(require('cray.report').format(cray.stats()))\n";
static const char objects_code[] =
    "io.stderr:write(require('cray.report').objects(cray.objects()))\n";

/* Whether this process joins an MPI job: --cluster says, or else the launcher's
 * environment (Open MPI's mpirun, or a PMI/PMIx launcher such as srun). */
static int wants_cluster(const cli *c) {
  if (c->cluster) return strcmp(c->cluster, "mpi") == 0;
  return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

/* Loads the MPI transport from beside this program or from ../lib/cray. */
static const cray_transport *load_transport(char *err, size_t errlen) {
  char exe[PATH_MAX], path[PATH_MAX + 32];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) {
    snprintf(err, errlen, "cannot find crayrun's own path");
    return NULL;
  }
  exe[n] = 0;
  char *slash = strrchr(exe, '/');
  if (slash) *slash = 0;
  static const char *const places[] = {"%s/cray_mpi.so", "%s/../lib/cray/cray_mpi.so"};
  for (size_t k = 0; k < sizeof places / sizeof *places; k++) {
    snprintf(path, sizeof path, places[k], exe);
    if (access(path, F_OK) != 0) continue;
    /* Global, so the plugins MPI loads in turn find its symbols. */
    void *h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (!h) {
      snprintf(err, errlen, "cannot load %s: %s", path, dlerror());
      return NULL;
    }
    const cray_transport *tp = dlsym(h, CRAY_TRANSPORT_SYMBOL);
    if (!tp) snprintf(err, errlen, "%s has no %s", path, CRAY_TRANSPORT_SYMBOL);
    return tp;
  }
  snprintf(err, errlen, "no cray_mpi.so beside %s or in %s/../lib/cray (build it with make where "
           "mpicc exists)", exe, exe);
  return NULL;
}

int main(int argc, char **argv) {
  cli c = {0};
  int status = parse_cli(argc, argv, &c);
  if (status >= 0) return status;

  cray__cluster *cluster = NULL;
  if (wants_cluster(&c)) {
    char why[2 * PATH_MAX + 256];
    const cray_transport *tp = load_transport(why, sizeof why);
    if (!tp || cray__cluster_start(&cluster, tp, why, sizeof why) != 0) {
      fprintf(stderr, "crayrun: cannot join the MPI job: %s\n", why);
      return 2;
    }
  }

  pthread_t sig_thread;
  if (start_signals(&sig_thread) != 0) {
    fputs("crayrun: cannot start the signal thread\n", stderr);
    if (cluster) cray__cluster_end(cluster, 1);
    return 1;
  }

  char *err = NULL;
  lua_State *L = cray__driver_new(NULL, &err);
  if (!L) {
    fprintf(stderr, "crayrun: %s\n", err);
    free(err);
    stop_signals(sig_thread);
    if (cluster) cray__cluster_end(cluster, 1);
    return 1;
  }
  lua_getglobal(L, "cray");
  lua_getfield(L, -1, "init");
  if ((status = push_init_options(L, &c)) >= 0) goto done;
  if (lua_pcall(L, 1, 0, 0) != 0) { /* an option's value cray.init refused: bad usage */
    if (lua_istable(L, -1)) lua_getfield(L, -1, "message");
    status = usage_error("%s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "cray.init failed");
    goto done;
  }
  lua_pop(L, 1);

  if (c.timeline) {
    /* refused now rather than after the run: a directory that is not there, say */
    FILE *probe = *c.timeline ? fopen(c.timeline, "a") : NULL;
    if (!probe) {
      status = usage_error("cannot write the timeline to '%s': %s", c.timeline,
                           *c.timeline ? strerror(errno) : "the file name is empty");
      goto done;
    }
    fclose(probe);
    /* Every rank records from its start (the others' at once, not asked by rank 0 before
     * they are ready); rank 0 writes the job's timeline at exit. */
    if (cray__trace_start() != 0) fprintf(stderr, "crayrun: no memory to record the timeline\n");
  }
  status = 0;
  if (cluster) {
    struct cray__sched *s = cray__driver_sched(L);
    if (!s) {
      fprintf(stderr, "crayrun: rank %d: cannot start the worker threads\n",
              cray__cluster_rank(cluster));
      status = 1;
      goto done;
    }
    cray__cluster_ready(cluster, s);
    if (cray__cluster_rank(cluster) != 0) {
      /* It serves tasks from the script's directory too, so their modules load. */
      if (c.script < argc && strcmp(argv[c.script], "-") != 0) add_script_dir(L, argv[c.script]);
      status = cray__cluster_serve(cluster); /* rank 0 writes the job's timeline */
      goto done;
    }
  }
  if (!c.no_progress) progress(L, 1);
  driver = L;
  for (int k = 0; k < c.nchunks && !status && !got_signal; k++)
    status = run_chunk(L, luaL_loadbuffer(L, c.chunks[k], strlen(c.chunks[k]), "=(command line)"), 0);
  if (!status && !got_signal && c.script < argc) {
    const char *path = argv[c.script];
    if (strcmp(path, "-") != 0) add_script_dir(L, path);
    int nargs = set_args(L, argc, argv, c.script);
    int load = luaL_loadfile(L, strcmp(path, "-") == 0 ? NULL : path);
    lua_insert(L, -nargs - 1);
    status = run_chunk(L, load, nargs);
  }
  driver = NULL;
  closing = 1;
  lua_sethook(L, NULL, 0, 0);
  progress(L, 0);
  if (got_signal) {
    status = 128 + got_signal;
    fprintf(stderr, "crayrun: %s\n", got_signal == SIGINT ? "interrupted" : "terminated");
  }
  if (c.timeline && timeline(L, c.timeline) && !status) status = 1;
  if (c.objects)
    run_chunk(L, luaL_loadbuffer(L, objects_code, sizeof objects_code - 1, "=objects"), 0);
  if (c.stats) run_chunk(L, luaL_loadbuffer(L, stats_code, sizeof stats_code - 1, "=stats"), 0);
done:
  lua_close(L);
  if (cray__module_abandoned() && !got_signal) status = 3;
  stop_signals(sig_thread);
  if (cluster) cray__cluster_end(cluster, status);
  return status;
}
