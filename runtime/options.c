/*
 * options.c: cray_options, their copies inside a runtime, and size strings ("512M").
 */
#include <ctype.h>
#include <stddef.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "runtime.h"

void cray_options_init(cray_options *opts) {
  if (!opts) return;
  memset(opts, 0, sizeof *opts);
  opts->size = sizeof *opts;
}

void cray__options_free(cray_options *o) {
  cray__free((char *)o->spill_dir);
  cray__free((char *)o->lua_path);
  cray__free((char *)o->lua_cpath);
  for (int i = 0; i < o->nresources; i++) cray__free((char *)o->resource_names[i]);
  cray__free((void *)o->resource_names);
  cray__free((void *)o->resource_counts);
}

/* The fields of this header's first version end with resource_counts. */
#define OPTIONS_MIN_SIZE (offsetof(cray_options, resource_counts) + sizeof(const double *))

int cray__options_copy(cray_options *dst, const cray_options *caller) {
  /* A caller built against another version: the fields its size covers, defaults for the
   * rest. */
  cray_options src_copy, *src = &src_copy;
  cray_options_init(src);
  memset(dst, 0, sizeof *dst);
  if (caller->size < OPTIONS_MIN_SIZE) return CRAY_EINVAL;
  memcpy(src, caller, caller->size < sizeof *src ? caller->size : sizeof *src);
  *dst = *src;
  dst->size = sizeof *dst;
  dst->spill_dir = dst->lua_path = dst->lua_cpath = NULL;
  dst->nresources = 0;
  dst->resource_names = NULL;
  dst->resource_counts = NULL;
  if (src->workers < 0 || src->nresources < 0 ||
      (src->worker_memory && src->worker_memory < CRAY_WORKER_MEMORY_MIN))
    return CRAY_EINVAL;
  if ((src->spill_dir && !(dst->spill_dir = cray__strdup(src->spill_dir))) ||
      (src->lua_path && !(dst->lua_path = cray__strdup(src->lua_path))) ||
      (src->lua_cpath && !(dst->lua_cpath = cray__strdup(src->lua_cpath))))
    return CRAY_ENOMEM;
  if (src->nresources > 0 && (!src->resource_names || !src->resource_counts)) return CRAY_EINVAL;
  /* One slot more, for the CPU resource cray__options_add_cpu may add. */
  const char **names = cray__calloc((size_t)src->nresources + 1, sizeof *names);
  double *counts = cray__calloc((size_t)src->nresources + 1, sizeof *counts);
  dst->resource_names = names;
  dst->resource_counts = counts;
  if (!names || !counts) return CRAY_ENOMEM;
  for (int i = 0; i < src->nresources; i++) {
    /* NaN and infinity would take the limit away for the whole run. */
    if (!src->resource_names[i] || !src->resource_names[i][0] ||
        !(src->resource_counts[i] >= 0) || isinf(src->resource_counts[i]))
      return CRAY_EINVAL;
    if (!(names[i] = cray__strdup(src->resource_names[i]))) return CRAY_ENOMEM;
    counts[i] = src->resource_counts[i];
    dst->nresources = i + 1;
  }
  return 0;
}

int cray__options_add_cpu(cray_options *o) {
  for (int i = 0; i < o->nresources; i++)
    if (strcmp(o->resource_names[i], "CPU") == 0) return 0;
  char *name = cray__strdup("CPU");
  if (!name) return CRAY_ENOMEM;
  ((const char **)o->resource_names)[o->nresources] = name;
  ((double *)o->resource_counts)[o->nresources++] = o->workers;
  return 0;
}

int cray_parse_size(const char *s, size_t *out) {
  if (!s || !out) return CRAY_EINVAL;
  while (isspace((unsigned char)*s)) s++;
  if (!isdigit((unsigned char)*s) && *s != '.') return CRAY_EINVAL;
  errno = 0;
  char *end;
  double v = strtod(s, &end);
  if (errno || end == s || !(v >= 0)) return CRAY_EINVAL;
  double unit = 1;
  switch (toupper((unsigned char)*end)) {
    case 'K': unit = 1024.0; end++; break;
    case 'M': unit = 1024.0 * 1024; end++; break;
    case 'G': unit = 1024.0 * 1024 * 1024; end++; break;
    case 'T': unit = 1024.0 * 1024 * 1024 * 1024; end++; break;
  }
  if (toupper((unsigned char)*end) == 'B') end++;
  while (isspace((unsigned char)*end)) end++;
  v *= unit;
  if (*end || v >= 18446744073709551616.0) return CRAY_EINVAL;
  *out = (size_t)floor(v);
  return 0;
}
