/*
 * timeline.c: cray.timeline([path]) (timeline.h).
 *
 * Recording, once started, goes on until cray.timeline(false) or the process ends, across
 * cray.shutdown and a later cray.init: each call with a path writes everything the rings
 * still hold, so a later file holds what an earlier one did unless the rings dropped it. The file is
 * written to a temporary name beside path and renamed over it, so a reader never sees
 * half a file. Under MPI, rank 0's calls speak for the job: recording starts and stops on
 * every rank, and the file holds every rank's events, one process each (trace.h); a call
 * on another rank (in a task there) is that rank's alone.
 */
#include "timeline.h"

#include <errno.h>
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#include "../runtime/alloc.h"
#include "../runtime/cluster.h"
#include "../runtime/trace.h"
#include "lstate.h"

/* Writes the job's timeline to f (rank 0 asks every rank for its events). */
static int write_job(cray__cluster *c, FILE *f, uint64_t *events, uint64_t *dropped) {
  int n = cray__cluster_size(c);
  cray__trace_rank *ranks = cray__calloc((size_t)n, sizeof *ranks);
  if (!ranks) return CRAY_ENOMEM;
  int rc = cray__cluster_trace(c, CRAY__QUERY_TRACE_READ, ranks) == 0
               ? cray__trace_write_job(f, ranks, n, events, dropped)
               : CRAY_ECLOSED;
  for (int k = 0; k < n; k++) cray__free(ranks[k].ev);
  cray__free(ranks);
  return rc;
}

int cray__timeline_l(lua_State *L) {
  cray__lstate *ls = lua_touserdata(L, lua_upvalueindex(1));
  cray__cluster *job = ls->rt && ls->rt->cluster && cray__cluster_rank(ls->rt->cluster) == 0
                           ? ls->rt->cluster
                           : NULL;
  if (lua_type(L, 1) == LUA_TBOOLEAN && !lua_toboolean(L, 1)) {
    cray__trace_stop();
    if (job) cray__cluster_trace(job, CRAY__QUERY_TRACE_STOP, NULL);
    return 0;
  }
  if (!lua_isnoneornil(L, 1) && lua_type(L, 1) != LUA_TSTRING)
    return cray__raise(L, "invalid_argument",
                       "cray.timeline: the path must be a string (a file name to write) or "
                       "false (to stop recording), not a %s",
                       luaL_typename(L, 1));
  if (!CRAY__TRACING() && cray__trace_start() != 0)
    return cray__raise(L, "out_of_memory", "cray.timeline: no memory to start recording");
  if (job && lua_isnoneornil(L, 1)) cray__cluster_trace(job, CRAY__QUERY_TRACE_START, NULL);
  if (lua_isnoneornil(L, 1)) return 0;
  const char *path = lua_tostring(L, 1);
  if (!*path) return cray__raise(L, "invalid_argument", "cray.timeline: the path is empty");
  lua_pushfstring(L, "%s.tmp", path);
  const char *tmp = lua_tostring(L, -1);
  FILE *f = fopen(tmp, "w");
  if (!f)
    return cray__raise(L, "io_error", "cray.timeline: cannot write '%s': %s", path, strerror(errno));
  int rank = ls->rt && ls->rt->cluster ? cray__cluster_rank(ls->rt->cluster) : -1;
  uint64_t events = 0, dropped = 0;
  int rc = job ? write_job(job, f, &events, &dropped) : cray__trace_write(f, rank, &events, &dropped);
  int err = errno;
  if (fclose(f) != 0 && rc == 0) rc = CRAY_ESYS, err = errno;
  if (rc == 0 && rename(tmp, path) != 0) rc = CRAY_ESYS, err = errno;
  if (rc != 0) {
    remove(tmp);
    if (rc == CRAY_ENOMEM) return cray__raise(L, "out_of_memory", "cray.timeline: no memory to write '%s'", path);
    if (rc == CRAY_ECLOSED)
      return cray__raise(L, "runtime", "cray.timeline: the other ranks' events could not be read for '%s': the runtime is shutting down", path);
    return cray__raise(L, "io_error", "cray.timeline: writing '%s' failed: %s", path, strerror(err));
  }
  lua_pushnumber(L, (lua_Number)events);
  lua_pushnumber(L, (lua_Number)dropped);
  return 2;
}
