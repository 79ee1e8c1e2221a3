/*
 * crayrun_options.c (fuzz target): crayrun's command line, read in process.
 *
 * Input: the arguments, separated by NUL bytes (argv[0] is "crayrun"). The whole of
 * crayrun.c is compiled in here, its main renamed and its stdout and stderr sent to
 * /dev/null, so parse_cli and push_init_options run as crayrun runs them. Promises: the
 * parser ends with "go on", 0 (help, version) or 2 (a usage error) and only points
 * c->script at an argument; the options it accepts make cray.init's table, or a usage
 * error, never a fault.
 */
#include <stdio.h>

#include "fuzz.h"

static FILE *sink;
#undef stdout
#undef stderr
#define stdout sink
#define stderr sink
#define printf(...) fprintf(sink, __VA_ARGS__)
#define main crayrun_main
#include "../../bindings/crayrun.c"
#undef main
#undef printf

#define MAX_ARGS 256

static lua_State *L;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  sink = fopen("/dev/null", "w");
  L = luaL_newstate();
  FUZZ_CHECK(sink != NULL && L != NULL);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1), *args[MAX_ARGS + 1];
  FUZZ_CHECK(text != NULL);
  memcpy(text, data, size);
  text[size] = 0;
  int argc = 0;
  args[argc++] = "crayrun";
  for (char *p = text; p <= text + size && argc < MAX_ARGS; p += strlen(p) + 1) args[argc++] = p;
  args[argc] = NULL;
  cli c = {0};
  int status = parse_cli(argc, args, &c);
  FUZZ_CHECK(status == -1 || status == 0 || status == 2);
  if (status == -1) {
    FUZZ_CHECK(c.script >= 1 && c.script <= argc && c.nchunks <= MAX_CHUNKS);
    status = push_init_options(L, &c);
    FUZZ_CHECK(status == -1 || status == 2);
    lua_settop(L, 0);
  }
  free(text);
  return 0;
}
