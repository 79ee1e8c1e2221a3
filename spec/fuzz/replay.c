/*
 * replay.c: runs a fuzz target once on each kept input, without libFuzzer.
 *
 *   replay-<target> FILE|DIR...
 *
 * Each file (each file of each directory, in name order) is one input. A broken promise
 * aborts, as under libFuzzer; otherwise the closing line is "N passed, 0 failed", the
 * form spec/run counts.
 */
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "replay: cannot open %s\n", path);
    return 0;
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *data = malloc(n > 0 ? (size_t)n : 1);
  size_t got = data ? fread(data, 1, (size_t)n, f) : 0;
  fclose(f);
  if (!data || got != (size_t)n) {
    fprintf(stderr, "replay: cannot read %s\n", path);
    free(data);
    return 0;
  }
  LLVMFuzzerTestOneInput(data, got);
  free(data);
  return 1;
}

static int by_name(const struct dirent **a, const struct dirent **b) {
  return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv) {
  int passed = 0, failed = 0;
  LLVMFuzzerInitialize(&argc, &argv);
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      fprintf(stderr, "replay: no such input %s\n", argv[i]);
      failed++;
      continue;
    }
    if (!S_ISDIR(st.st_mode)) {
      run_file(argv[i]) ? passed++ : failed++;
      continue;
    }
    struct dirent **names;
    int n = scandir(argv[i], &names, NULL, by_name);
    for (int k = 0; k < n; k++) {
      if (names[k]->d_name[0] != '.') {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[i], names[k]->d_name);
        run_file(path) ? passed++ : failed++;
      }
      free(names[k]);
    }
    free(names);
    if (n < 0) failed++;
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed != 0;
}
